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
from compressai.zoo import image_models
from torch.nn import Module
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


def zoo_channels(architecture: str, quality: int) -> tuple[int, ...]:
    """``(N, M)`` of a zoo model at ``quality`` (``(N,)`` for cheng2020, whose ``M`` is ``N``)."""
    return tuple(_zoo.cfgs[architecture][quality])


def zoo_model(architecture: str, quality: int, metric: str = "mse", pretrained: bool = False,
              progress: bool = True) -> Module:
    """The zoo's model of ``architecture`` at ``quality``, its pretrained weights through torch.hub if asked."""
    return image_models[architecture](quality=quality, metric=metric, pretrained=pretrained, progress=progress)


def decoded_latents(net: Module, strings: list, shape) -> Tensor:  # noqa: ANN001
    """The ``y_hat`` CompressAI's own ``decompress`` of zoo model ``net`` decodes from ``strings``
    (``decompress`` returns the image alone): what lic's decoder is compared with, index by index."""
    import torch.nn.functional as F

    z_hat = net.entropy_bottleneck.decompress(strings[1], shape)
    if hasattr(net, "context_prediction"):  # the spatial context models' serial decoding
        params, pad = net.h_s(z_hat), 2
        y_hat = z_hat.new_zeros((z_hat.size(0), net.M, 4 * shape[0] + 2 * pad, 4 * shape[1] + 2 * pad))
        for i, s in enumerate(strings[0]):
            net._decompress_ar(s, y_hat[i : i + 1], params[i : i + 1], 4 * shape[0], 4 * shape[1], 5, pad)
        return F.pad(y_hat, (-pad, -pad, -pad, -pad))
    out = net.h_s(z_hat)
    scales, means = out.chunk(2, 1) if out.size(1) == 2 * net.M else (out, None)
    indexes = net.gaussian_conditional.build_indexes(scales)
    return net.gaussian_conditional.decompress(strings[0], indexes, z_hat.dtype, means)
