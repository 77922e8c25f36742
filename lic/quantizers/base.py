"""The quantizer interface shared by USQ and TCQ.

A quantizer works on the residual ``r = y - means`` and owns four things: the training
perturbation, the map from latents to integer indices, the map back, and the per-element
index probabilities (CDF tables) the entropy coder uses.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from compressai.entropy_models import EntropyModel, GaussianConditional
from torch import Tensor

from lic.errors import LicError


Sensitivity = Callable[[], Tensor]  # the decoder's per-channel gain, computed when first needed


class Quantizer(ABC):
    """Interface of a latent quantizer bound to a model's Gaussian conditional.

    Build one with :func:`lic.quantizers.make_quantizer`. ``sensitivity``, when given, returns the
    decoder's per-channel gain ``||d g_s / d y_c||^2``; a quantizer whose search weights errors by
    it (TCQ with ``weighting="decoder"``) calls it when it quantizes.
    """

    name: ClassVar[str]
    code: ClassVar[int]  # identifies the quantizer in a bitstream header
    lambda_param: ClassVar[str | None] = None  # a search lambda that a model derives from its own (search_lambda)

    def __init__(self, conditional: GaussianConditional, sensitivity: Sensitivity | None = None) -> None:
        self.conditional = conditional
        self.sensitivity = sensitivity

    @classmethod
    def threads(cls, n: int) -> None:
        """Let its search use ``n`` threads besides torch's (TCQ's trellis search has its own)."""

    @property
    def uses_sensitivity(self) -> bool:
        """Whether :meth:`quantize` calls ``sensitivity``."""
        return False

    @abstractmethod
    def perturb(self, y: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        """Training surrogate: ``(y_tilde, likelihoods)``, differentiable in all inputs."""

    @abstractmethod
    def quantize(self, y: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """Integer indices (int32) of ``y``."""

    @abstractmethod
    def dequantize(self, indices: Tensor, means: Tensor) -> Tensor:
        """Reconstruction ``y_hat = means + level(indices)``."""

    @abstractmethod
    def likelihoods(self, indices: Tensor, scales: Tensor) -> Tensor:
        """Model probability of each index (the rate the coder aims at is ``-log2`` of it)."""

    def requantize(self, latent: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        """Phase 4's ``(indices, likelihoods)``. int32 ``latent``: indices kept as they are (stale),
        with ``P(k | scales)``. Else ``y`` (online): its indices ``k`` under the current (detached)
        ``means`` and ``scales``, and ``P(k | scales) * exp(log P~ - sg(log P~))``, ``P~`` the
        training surrogate's likelihood of ``y`` (:meth:`perturb`, ``scales`` detached).

        Its value is the real index probability, and so is its gradient in ``scales``; in ``means`` it
        takes the surrogate's gradient, which moving ``means`` away from ``y`` costs in rate. The real
        probability has none (``k`` follows ``means``), and without it nothing holds ``means`` near ``y``.
        """
        if latent.dtype == torch.int32:
            return latent, self.likelihoods(latent, scales)
        k = self.quantize(latent, means.detach(), scales.detach())
        return k, self.online_likelihoods(latent, k, means, scales)

    def online_likelihoods(self, y: Tensor, k: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """``P(k | scales) * exp(log P~ - sg(log P~))``: the real probability of the indices ``k`` chosen
        for ``y``, with the training surrogate's gradient in ``means`` (see :meth:`requantize`)."""
        surrogate = self.perturb(y, means, scales.detach())[1].log()
        return self.likelihoods(k, scales) * torch.exp(surrogate - surrogate.detach())

    needs_means = False  # whether perturb_alone needs a guess of the means (its noise depends on y - means)

    @abstractmethod
    def perturb_alone(self, y: Tensor, means: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The training surrogate when the means are not known yet: ``(y_tilde, width)``, ``width`` the
        cell each element was perturbed within (a spatial context model computes its context, and so
        its means, from ``y_tilde``). ``means``: a guess of them, where the surrogate needs one
        (:attr:`needs_means`)."""

    @abstractmethod
    def likelihood_of(self, y_tilde: Tensor, width: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """The surrogate's likelihood of :meth:`perturb_alone`'s ``y_tilde`` (a cell of ``width``) under
        ``means`` and ``scales``."""

    def encode(self, indices: Tensor, scales: Tensor) -> bytes:
        """Entropy-code the indices of one image."""
        return self.encode_parts([(indices, scales)])

    def decode(self, data: bytes, scales: Tensor) -> Tensor:
        """Inverse of :meth:`encode`: the int32 indices, shaped like ``scales``."""
        return self.decoder(data)(scales)

    @abstractmethod
    def encode_parts(self, parts: list[tuple[Tensor, Tensor]]) -> bytes:
        """Entropy-code ``(indices, scales)`` parts into one string that :meth:`decoder` reads back part
        by part, in order (a spatial context model's wavefronts: each part's scales depend on the
        parts decoded before it)."""

    @abstractmethod
    def decoder(self, data: bytes) -> Callable[[Tensor], Tensor]:
        """A reader of :meth:`encode_parts`'s string: called with a part's ``scales``, it returns that
        part's int32 indices (shaped like them), continuing where the previous call stopped."""

    def params(self) -> dict[str, Any]:
        """The constructor's parameters: ``make_quantizer(q.name, ..., **q.params())`` rebuilds ``q``.
        Dataset provenance records them."""
        return {}

    def pack_params(self) -> bytes:
        """What the decoder needs of :meth:`params`, as bytes for the bitstream header."""
        return b""

    @classmethod
    def unpack_params(cls, data: bytes) -> dict[str, Any]:
        """Inverse of :meth:`pack_params`: constructor parameters."""
        if data:
            raise LicError(f"bitstream gives parameters to {cls.name}, which takes none")
        return {}

    def table_model(self) -> EntropyModel:
        """The entropy model whose CDF tables this quantizer codes with (and its search charges)."""
        return self.conditional

    def with_tables(self, model: EntropyModel) -> "Quantizer":
        """A copy that codes with ``model``'s tables (e.g. fitted ones, :mod:`lic.tables`)."""
        out = copy.copy(self)
        out.__dict__.pop("_tables", None)  # cached code lengths of the old tables
        out.conditional = model
        return out

    @property
    def fitted(self) -> bool:
        """Whether its tables were fitted to its decisions rather than derived from the Gaussian."""
        return bool(getattr(self.table_model(), "lic_fitted", False))

    def coded_symbols(self, indices: Tensor, scales: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(symbols, rows)``: every value the entropy coder codes for ``indices``, and its table row
        (here each index in the row of its scale bin)."""
        return indices.long().cpu().numpy().ravel(), self.table_indexes(scales).long().cpu().numpy().ravel()

    def table_indexes(self, scales: Tensor) -> Tensor:
        """Row of the scale table for each element: the smallest bin scale >= ``scales``.

        Same result as ``GaussianConditional.build_indexes``, by one binary search per element
        instead of one pass over the tensor per table entry.
        """
        c = self.conditional
        return torch.bucketize(c.lower_bound_scale(scales).contiguous(), c.scale_table[:-1]).int()
