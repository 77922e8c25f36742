"""USQ with rate-distortion optimized decisions (RDOQ): a USQ stream whose indices are chosen by
``D + lambda R`` instead of rounding.

Each residual ``r = y - means`` takes the cheapest of ``round(r)``, one step toward zero and 0 by

    J(k) = w_c (r - k)^2 + lambda_rdoq * bits(k | sigma),

``bits`` the code length of ``k`` in the model's own USQ tables (:func:`lic.entropy.symbol_bits`),
``w_c`` the decoder's sensitivity of channel ``c`` (mean 1, as TCQ's search weights its errors).
The decoder is USQ's: the header names USQ, and ``y_hat = means + k`` as for rounding.

The search's ``lambda_rdoq`` follows from the model's own Lagrangian (:func:`search_lambda`).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import torch
from compressai.entropy_models import GaussianConditional
from torch import Tensor

from lic.config import WEIGHTINGS
from lic.entropy import symbol_bits
from lic.errors import LicError
from lic.quantizers.base import Sensitivity
from lic.quantizers.usq import USQ

PIXEL_SCALE = 255.0  # CompressAI's distortion term: lmbda * 255^2 * MSE of images in [0, 1]


def search_lambda(lmbda: float, gain: float) -> float:
    """The rate weight of a search whose distortion is ``w_i dy_i^2`` (``w`` of mean 1), from the
    model's Lagrangian.

    Training minimizes, per image of ``H x W`` pixels, ``L = lmbda 255^2 MSE + bits / (H W)``. To
    first order a latent error ``dy_i`` adds ``G_i dy_i^2 / (3 H W)`` to the MSE of the 3 colour
    planes, ``G_i = ||d g_s / d y_i||^2``. Multiplied by ``3 H W / (lmbda 255^2 G)``, ``G`` the mean
    gain and ``w_i = G_i / G``:

        sum_i w_i dy_i^2 + lambda_search * bits,    lambda_search = 3 / (lmbda * 255^2 * G).
    """
    if not (lmbda > 0 and gain > 0 and math.isfinite(lmbda) and math.isfinite(gain)):
        raise LicError(f"the search lambda needs a positive model lambda and decoder gain, got {lmbda} and {gain}")
    return 3.0 / (lmbda * PIXEL_SCALE**2 * gain)


class RDOQ(USQ):
    """USQ whose indices minimize ``w_c (r - k)^2 + lambda_rdoq * bits`` among ``round(r)``, one step
    toward zero and 0; trained with USQ's noise, decoded by USQ."""

    name = "rdoq"
    code = USQ.code  # a USQ stream: any USQ decoder reads it
    lambda_param = "lambda_rdoq"  # what CodingModel.quantizer_for derives from the model when not given

    def __init__(self, conditional: GaussianConditional, sensitivity: Sensitivity | None = None,
                 lambda_rdoq: float | None = None, weighting: str = "decoder") -> None:
        super().__init__(conditional, sensitivity)
        if lambda_rdoq is None:
            raise LicError("rdoq needs its search lambda (lambda_rdoq); a model's quantizer_for derives it from "
                           "the model's training lambda")
        if not (lambda_rdoq >= 0 and math.isfinite(lambda_rdoq)):
            raise LicError(f"lambda_rdoq must be a non-negative number, got {lambda_rdoq}")
        if weighting not in WEIGHTINGS:
            raise LicError(f"unknown RDOQ weighting {weighting!r}; choose one of {WEIGHTINGS}")
        self.lambda_rdoq, self.weighting = float(lambda_rdoq), weighting

    def params(self) -> dict[str, Any]:
        return {"lambda_rdoq": self.lambda_rdoq, "weighting": self.weighting}

    @property
    def uses_sensitivity(self) -> bool:
        return self.weighting == "decoder"

    @cached_property
    def _tables(self) -> tuple[Tensor, Tensor, Tensor]:
        bits, offsets, n = symbol_bits(self.conditional)
        return torch.from_numpy(bits), torch.from_numpy(offsets), torch.from_numpy(n)

    def weights(self, y: Tensor) -> Tensor:
        """Each element's weight of its squared error (float64, broadcast over ``y``)."""
        if self.weighting == "none":
            return torch.ones((), dtype=torch.float64, device=y.device)
        if self.sensitivity is None:
            raise LicError("RDOQ weighting 'decoder' needs the model's decoder: build the quantizer with "
                           "CodingModel.quantizer_for, or pass weighting='none'")
        w = self.sensitivity().detach().to(y.device, torch.float64)
        return w.reshape(1, -1, *([1] * (y.dim() - 2)))

    def quantize(self, y: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """The cheapest of ``round(r)``, one step toward zero and 0 by ``J(k) = w_c (r - k)^2 +
        lambda_rdoq * bits(k | sigma)`` (float64); residuals, weights and table rows computed once, the
        first of equal costs chosen (rounding wins its ties)."""
        rounded = super().quantize(y, means, scales).long()
        bits, offsets, n = (t.to(y.device) for t in self._tables)
        row = self.table_indexes(scales).long().expand_as(rounded)
        first, length = offsets[row], n[row]
        r, w = (y - means).double(), self.weights(y)

        def cost(k: Tensor) -> Tensor:
            symbol = k - first  # outside a row's [0, n): its escape column, charged at its least
            column = torch.where((symbol >= 0) & (symbol < length), symbol, length)
            return w * (r - k.double()) ** 2 + self.lambda_rdoq * bits[row, column]

        best, least = rounded, cost(rounded)
        for k in (rounded - torch.sign(rounded), torch.zeros_like(rounded)):
            c = cost(k)
            cheaper = c < least
            best, least = torch.where(cheaper, k, best), torch.where(cheaper, c, least)
        return best.to(torch.int32)
