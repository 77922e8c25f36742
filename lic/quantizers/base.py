"""The quantizer interface shared by USQ and TCQ.

A quantizer works on the residual ``r = y - means`` and owns four things: the training
perturbation, the map from latents to integer indices, the map back, and the per-element
index probabilities (CDF tables) the entropy coder uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from compressai.entropy_models import GaussianConditional
from torch import Tensor

from lic.errors import LicError


class Quantizer(ABC):
    """Interface of a latent quantizer bound to a model's Gaussian conditional."""

    name: ClassVar[str]
    code: ClassVar[int]  # identifies the quantizer in a bitstream header

    def __init__(self, conditional: GaussianConditional) -> None:
        self.conditional = conditional

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

    @abstractmethod
    def encode(self, indices: Tensor, scales: Tensor) -> bytes:
        """Entropy-code the indices of one image."""

    @abstractmethod
    def decode(self, data: bytes, scales: Tensor) -> Tensor:
        """Inverse of :meth:`encode`: the int32 indices, shaped like ``scales``."""

    def params(self) -> dict[str, Any]:
        """Parameters recorded with the quantizer (bitstream header, dataset provenance)."""
        return {}

    def pack_params(self) -> bytes:
        """The parameters as bytes for the bitstream header."""
        return b""

    @classmethod
    def from_packed(cls, conditional: GaussianConditional, data: bytes) -> "Quantizer":
        """Rebuild the quantizer from :meth:`pack_params` output."""
        if data:
            raise LicError(f"bitstream gives parameters to {cls.name}, which takes none")
        return cls(conditional)

    def table_indexes(self, scales: Tensor) -> Tensor:
        """Row of the scale table for each element: the smallest bin scale >= ``scales``.

        Same result as ``GaussianConditional.build_indexes``, by one binary search per element
        instead of one pass over the tensor per table entry.
        """
        c = self.conditional
        return torch.bucketize(c.lower_bound_scale(scales), c.scale_table[:-1]).int()
