"""The quantizer interface shared by USQ and TCQ.

A quantizer works on the residual ``r = y - means`` and owns four things: the training
perturbation, the map from latents to integer indices, the map back, and the per-element
index probabilities (CDF tables) the entropy coder uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import torch
from compressai.entropy_models import GaussianConditional
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

    def __init__(self, conditional: GaussianConditional, sensitivity: Sensitivity | None = None) -> None:
        self.conditional = conditional
        self.sensitivity = sensitivity

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
        y = latent
        k = self.quantize(y, means.detach(), scales.detach())
        surrogate = self.perturb(y, means, scales.detach())[1].log()
        return k, self.likelihoods(k, scales) * torch.exp(surrogate - surrogate.detach())

    @abstractmethod
    def encode(self, indices: Tensor, scales: Tensor) -> bytes:
        """Entropy-code the indices of one image."""

    @abstractmethod
    def decode(self, data: bytes, scales: Tensor) -> Tensor:
        """Inverse of :meth:`encode`: the int32 indices, shaped like ``scales``."""

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

    def table_indexes(self, scales: Tensor) -> Tensor:
        """Row of the scale table for each element: the smallest bin scale >= ``scales``.

        Same result as ``GaussianConditional.build_indexes``, by one binary search per element
        instead of one pass over the tensor per table entry.
        """
        c = self.conditional
        return torch.bucketize(c.lower_bound_scale(scales), c.scale_table[:-1]).int()
