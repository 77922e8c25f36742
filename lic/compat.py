"""CompressAI's private API, in one place.

``lic`` builds on CompressAI's entropy models and its rANS coder. The members reached here are not
part of CompressAI's public API (names with a leading underscore, module internals, the compiled
``ans`` extension), so a new CompressAI version may change them: then this file is the one to
change. ``tests/test_compat.py`` pins their behaviour.
"""

from __future__ import annotations

from compressai import ans
from compressai.entropy_models import EntropyModel, GaussianConditional
from compressai.entropy_models.entropy_models import pmf_to_quantized_cdf as _pmf_to_quantized_cdf
from compressai.zoo import image as _zoo
from torch import Tensor

RansEncoder = ans.RansEncoder
RansDecoder = ans.RansDecoder


def gaussian_likelihood(conditional: GaussianConditional, values: Tensor, scales: Tensor) -> Tensor:
    """``P(k) = Phi((1/2 - |k|) / s) - Phi((-1/2 - |k|) / s)`` with ``s`` the lower-bounded scale;
    no likelihood bound applied."""
    return conditional._likelihood(values, scales)


def standard_cumulative(conditional: GaussianConditional, v: Tensor) -> Tensor:
    """``Phi(v) = erfc(-v / sqrt 2) / 2``, the standard normal CDF as CompressAI computes it."""
    return conditional._standardized_cumulative(v)


def pmf_to_quantized_cdf(pmf: Tensor, precision: int) -> Tensor:
    """A CDF of ``len(pmf) + 1`` integers summing to ``2^precision``, every symbol at least 1."""
    return _pmf_to_quantized_cdf(pmf, precision)


def cdf_tables(model: EntropyModel) -> tuple[Tensor, Tensor, Tensor]:
    """``(cdf, lengths, offsets)``: the tables ``update()`` left, one row per distribution."""
    return model._quantized_cdf, model._cdf_length, model._offset


def set_cdf_tables(model: EntropyModel, cdf: Tensor, lengths: Tensor, offsets: Tensor) -> None:
    """Install tables built outside CompressAI's ``update()`` (e.g. TCQ's), as it stores its own."""
    model._quantized_cdf, model._cdf_length, model._offset = cdf, lengths, offsets


def zoo_url(architecture: str, metric: str, quality: int) -> str | None:
    """The URL CompressAI's zoo downloads the weights from (``None`` if it has none)."""
    return _zoo.model_urls.get(architecture, {}).get(metric, {}).get(quality)


def zoo_channels(architecture: str, quality: int) -> tuple[int, int]:
    """``(N, M)`` of a zoo model at ``quality``."""
    return tuple(_zoo.cfgs[architecture][quality])
