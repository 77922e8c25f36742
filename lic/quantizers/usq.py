"""Uniform scalar quantization (USQ) with unit step, as CompressAI does it.

``k = round(y - means)``, ``y_hat = means + k``. The index ``k`` of an element with scale
``sigma`` has probability ``P(k) = Phi((k + 1/2) / sigma) - Phi((k - 1/2) / sigma)``.
"""

from __future__ import annotations

from torch import Tensor

from lic.compat import gaussian_likelihood
from lic.entropy import CdfTables, decode_symbols, encode_symbols
from lic.quantizers.base import Quantizer


class USQ(Quantizer):
    """Unit-step uniform scalar quantizer; trained with additive uniform noise U(-1/2, 1/2)."""

    name = "usq"
    code = 0

    def perturb(self, y: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        return self.conditional(y, scales, means=means, training=True)

    def quantize(self, y: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        return self.conditional.quantize(y, "symbols", means)

    def dequantize(self, indices: Tensor, means: Tensor) -> Tensor:
        return self.conditional.dequantize(indices, means)

    def likelihoods(self, indices: Tensor, scales: Tensor) -> Tensor:
        c = self.conditional
        return c.likelihood_lower_bound(gaussian_likelihood(c, indices.to(scales.dtype), scales))

    def encode(self, indices: Tensor, scales: Tensor) -> bytes:
        return encode_symbols(indices, self.table_indexes(scales), CdfTables.of(self.conditional))

    def decode(self, data: bytes, scales: Tensor) -> Tensor:
        return decode_symbols(data, self.table_indexes(scales), CdfTables.of(self.conditional))
