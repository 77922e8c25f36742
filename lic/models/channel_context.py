"""A channel-wise autoregressive entropy model (Minnen & Singh, ICIP 2020) on the mean-scale
hyperprior, for USQ and TCQ alike.

``y`` is split into ``S`` slices of ``M / S`` channels. Slice ``k``'s entropy parameters come from
the hyperprior's and from the slices decoded before it:

    (scales_k, means_k) = hyper_k + cc_k(hyper_k, y_hat_0, ..., y_hat_{k-1}),

``hyper = h_s(z_hat)`` as in :class:`~lic.models.Hyperprior`, ``cc_k`` a small convolutional
transform whose last layer starts at zero, so that a fresh model codes exactly as the hyperprior it
is initialized from. Within a slice all positions are independent given that context: USQ rounds
them, TCQ runs one Viterbi search per slice with that slice's ``means``, ``scales`` and decoder
weights. Coding follows CompressAI's ``ChannelGroupsLatentCodec`` slice by slice; the entropy
parameters are computed in float64 with snapped means (as the hyperprior's), so the decoder's
``means`` and ``scales`` equal the encoder's bit for bit. A ``y`` string is the slices' streams,
each prefixed by its length (4 bytes).

Training contexts (``config.context``) are, by default, the earlier slices as training sees them:
perturbed (USQ noise, TCQ's training perturbation), the surrogate the rate and distortion see too.
The alternative, ``quantized``, gives later slices what the decoder will see: the earlier slices
quantized as the coder quantizes them, with a straight-through gradient.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from lic.config import ModelConfig
from lic.models.hyperprior import Hyperprior, exact_call, exact_parameters
from lic.errors import LicError
from lic.quantizers import Quantizer


def context_transform(inputs: int, outputs: int, width: int) -> nn.Sequential:
    """``cc_k``: three 3x3 convolutions; the last starts at zero (a fresh slice adds nothing)."""
    last = nn.Conv2d(width, outputs, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), last)


class ChannelContext(Hyperprior):
    """Mean-scale hyperprior plus ``config.slices`` channel slices, each conditioned on the earlier ones."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        m = config.M // config.slices
        self.groups = [m] * config.slices
        self.cc = nn.ModuleList(context_transform(2 * m + k * m, 2 * m, max(2 * m, 32)) for k in range(config.slices))

    def _bounds(self, k: int) -> slice:
        lo = sum(self.groups[:k])
        return slice(lo, lo + self.groups[k])

    def _slice_parameters(self, k: int, hyper: Tensor, earlier: list[Tensor], exact: bool) -> tuple[Tensor, Tensor]:
        """``(scales_k, means_k)`` from the hyperprior's ``(scales, means)`` (``hyper``, 2M channels) and
        the earlier slices; ``exact``: float64 and snapped means (coding), else float32 (training)."""
        s = self._bounds(k)
        own = torch.cat([hyper[:, : self.M][:, s], hyper[:, self.M :][:, s]], 1)
        inputs = torch.cat([own, *earlier], 1)
        if exact:
            return exact_parameters(exact_call(self.cc[k], inputs) + own.double())
        scales, means = (self.cc[k](inputs) + own).chunk(2, 1)
        return scales, means

    def slice_quantizer(self, q: Quantizer, k: int) -> Quantizer:
        """``q`` for slice ``k``: the same parameters, the decoder weights of that slice's channels."""
        if q.sensitivity is None:
            return q
        s, full = self._bounds(k), q.sensitivity
        qk = copy.copy(q)  # keeps what q has built (TCQ's code lengths)
        qk.sensitivity = lambda: full()[s]
        return qk

    def surrogate(self, y: Tensor, z_hat: Tensor, q: Quantizer | None = None) -> tuple[Tensor, Tensor]:
        """Each slice perturbed by ``q``'s surrogate (default the model's), its context the earlier slices'
        :meth:`training_context`."""
        q = q or self.quantizer
        hyper = self.h_s(z_hat)
        y_tilde: list[Tensor] = []
        contexts: list[Tensor] = []
        likelihoods: list[Tensor] = []
        for k, y_k in enumerate(y.split(self.groups, 1)):
            scales, means = self._slice_parameters(k, hyper, contexts, exact=False)
            t, lik = q.perturb(y_k, means, scales)
            y_tilde.append(t)
            contexts.append(self.training_context(y_k, t, means, scales))
            likelihoods.append(lik)
        return torch.cat(y_tilde, 1), torch.cat(likelihoods, 1)

    def training_context(self, y_k: Tensor, y_tilde: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """What slice ``k`` gives the later slices' contexts in training: ``y_tilde`` (perturbed), or
        ``y_k + sg(y_hat_k - y_k)``, ``y_hat_k`` the slice quantized as the coder does (TCQ's search
        without decoder weighting, which would cost a pass through ``g_s`` every step)."""
        if self.config.context == "perturbed":
            return y_tilde
        q = self.__dict__.get("_context_quantizer")
        if q is None:
            q = self.__dict__["_context_quantizer"] = self.quantizer_for(
                None, **({"weighting": "none"} if self.config.quantizer == "tcq" else {}))
        with torch.no_grad():
            y_hat = q.dequantize(q.quantize(y_k, means, scales), means)
        return y_k + (y_hat - y_k).detach()

    def entropy_decoders(self) -> list[nn.Module]:
        return [self.h_s, self.cc]

    def requantize(self, latent: Tensor, z_hat: Tensor, q: Quantizer,
                   context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Phase 4's pass slice by slice: each slice's context is the earlier slices' ``y_hat``."""
        hyper = self.h_s(z_hat)
        y_hat: list[Tensor] = []
        likelihoods: list[Tensor] = []
        for k, part in enumerate(latent.split(self.groups, 1)):
            scales, means = self._slice_parameters(k, hyper, y_hat, exact=False)
            qk = self.slice_quantizer(q, k)
            idx, lik = qk.requantize(part, means, scales)
            y_hat.append(qk.dequantize(idx, means))
            likelihoods.append(lik)
        return torch.cat(y_hat, 1), torch.cat(likelihoods, 1)

    def code_latents(self, a: dict[str, Any], q: Quantizer) -> dict[str, Tensor]:
        """Quantize ``a["y"]`` slice by slice: ``indices``, ``y_hat`` and the ``means`` and ``scales``
        each slice was quantized (and is coded) with; ``a``'s ``means`` and ``scales`` are the
        hyperprior's (:meth:`analyze`)."""
        hyper = torch.cat([a["scales"], a["means"]], 1)
        out: dict[str, list[Tensor]] = {"indices": [], "y_hat": [], "means": [], "scales": []}
        for k, y_k in enumerate(a["y"].split(self.groups, 1)):
            scales, means = self._slice_parameters(k, hyper, out["y_hat"], exact=True)
            qk = self.slice_quantizer(q, k)
            indices = qk.quantize(y_k, means, scales)
            for name, t in (("indices", indices), ("y_hat", qk.dequantize(indices, means)), ("means", means),
                            ("scales", scales)):
                out[name].append(t)
        return {name: torch.cat(ts, 1) for name, ts in out.items()}

    def coded_parts(self, c: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """The slices, each coded as a stream of its own."""
        return list(zip(c["indices"].split(self.groups, 1), c["scales"].split(self.groups, 1)))

    def compress(self, x: Tensor, quantizer: Quantizer | None = None) -> dict[str, Any]:
        """Real bitstreams, one per image: the slices' streams, each after its length."""
        q = quantizer or self.quantizer
        a = self.analyze(x)
        c = self.code_latents(a, q)
        y_strings = []
        for i in range(len(x)):
            parts = [q.encode(idx[i : i + 1], sc[i : i + 1]) for idx, sc in self.coded_parts(c)]
            y_strings.append(b"".join(len(p).to_bytes(4, "big") + p for p in parts))
        return {"strings": [y_strings, a["z_strings"]], "shape": a["shape"], "y_hat": c["y_hat"],
                "means": c["means"], "scales": c["scales"]}

    def decompress(self, strings: list[list[bytes]], shape: torch.Size,
                   quantizer: Quantizer | None = None) -> dict[str, Tensor]:
        """Inverse of :meth:`compress`, slice by slice: ``x_hat``, ``y_hat``, ``means``, ``scales``."""
        q = quantizer or self.quantizer
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        hyper = torch.cat(self.hyper_parameters(z_hat), 1)
        images = []
        for i, data in enumerate(strings[0]):
            parts = _split(data, len(self.groups))
            y_hat: list[Tensor] = []
            means_: list[Tensor] = []
            scales_: list[Tensor] = []
            for k, part in enumerate(parts):
                scales, means = self._slice_parameters(k, hyper[i : i + 1], y_hat, exact=True)
                indices = q.decode(part, scales).to(means.device)
                y_hat.append(q.dequantize(indices, means))
                means_.append(means)
                scales_.append(scales)
            images.append([torch.cat(t, 1) for t in (y_hat, means_, scales_)])
        y_hat, means, scales = (torch.cat([im[j] for im in images]) for j in range(3))
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1), "y_hat": y_hat, "means": means, "scales": scales}


def _split(data: bytes, count: int) -> list[bytes]:
    """The ``count`` length-prefixed parts of a ``y`` string."""
    parts, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(data):
            raise LicError("corrupt stream: a slice of y is missing")
        n = int.from_bytes(data[pos : pos + 4], "big")
        if pos + 4 + n > len(data):
            raise LicError("corrupt stream: a slice of y is cut short")
        parts.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    if pos != len(data):
        raise LicError("corrupt stream: bytes after the last slice of y")
    return parts
