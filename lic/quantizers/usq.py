"""Uniform scalar quantization (USQ) with unit step, as CompressAI does it.

``k = round(y - means)``, ``y_hat = means + k``. The index ``k`` of an element with scale
``sigma`` has probability ``P(k) = Phi((k + 1/2) / sigma) - Phi((k - 1/2) / sigma)``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import torch
from torch import Tensor

from lic.compat import gaussian_likelihood
from lic.entropy import CdfTables, StreamDecoder, encode_symbols, table_digest
from lic.quantizers.base import Quantizer


class USQ(Quantizer):
    """Unit-step uniform scalar quantizer; trained with additive uniform noise U(-1/2, 1/2)."""

    name = "usq"
    code = 0

    def perturb(self, y: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        return self.conditional(y, scales, means=means, training=True)

    def pack_params(self) -> bytes:
        """Nothing with the Gaussian tables (any USQ decoder reads the stream); with fitted tables
        (:mod:`lic.tables`) their CRC-32, which only a decoder holding those tables matches."""
        return struct.pack(">I", table_digest(self.conditional)) if self.fitted else b""

    @classmethod
    def unpack_params(cls, data: bytes) -> dict[str, Any]:
        if len(data) != 4:
            return super().unpack_params(data)
        return {}  # fitted tables' digest: checked by repacking (lic.quantizers.quantizer_from_header)

    def quantize(self, y: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        return self.conditional.quantize(y, "symbols", means)

    def dequantize(self, indices: Tensor, means: Tensor) -> Tensor:
        return self.conditional.dequantize(indices, means)

    def likelihoods(self, indices: Tensor, scales: Tensor) -> Tensor:
        c = self.conditional
        return c.likelihood_lower_bound(gaussian_likelihood(c, indices.to(scales.dtype), scales))

    def perturb_alone(self, y: Tensor, means: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``y + u``, ``u ~ U(-1/2, 1/2)``: CompressAI's noise, whatever the means; cells of width 1."""
        return self.conditional.quantize(y, "noise"), torch.ones_like(y)

    def likelihood_of(self, y_tilde: Tensor, width: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        c = self.conditional
        return c.likelihood_lower_bound(gaussian_likelihood(c, y_tilde - means, scales))

    def encode_parts(self, parts: list[tuple[Tensor, Tensor]]) -> bytes:
        return encode_symbols(torch.cat([k.reshape(-1) for k, _ in parts]),
                              torch.cat([self.table_indexes(s).reshape(-1) for _, s in parts]),
                              CdfTables.of(self.conditional))

    def decoder(self, data: bytes) -> Callable[[Tensor], Tensor]:
        tables = CdfTables.of(self.conditional)
        rans = StreamDecoder(data)

        def read(scales: Tensor) -> Tensor:
            indexes = self.table_indexes(scales)
            return rans.read(indexes.reshape(-1), tables).reshape(indexes.shape)

        return read
