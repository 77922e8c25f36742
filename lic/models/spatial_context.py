"""Spatial autoregressive context models with real quantization and exact coding: CompressAI's
``mbt2018`` (Minnen, Ballé and Toderici, NeurIPS 2018) and ``cheng2020-anchor`` / ``cheng2020-attn``
(Cheng, Sun, Takeuchi and Katto, CVPR 2020).

The entropy parameters of position ``(i, j)`` come from the hyperprior's ``params = h_s(z_hat)`` there
and from a 5x5 masked convolution over the latents decoded before it, in raster order:

    (scales, means) = entropy_parameters(params, context_prediction(y_hat))

The decoder knows ``y_hat`` only up to the position it decodes, so coding is sequential. Positions
with the same ``3 i + j`` do not depend on each other (the mask reaches two rows up and two columns to
either side, and two columns back in the current row), so each such wavefront is coded in one step:
its contexts, entropy parameters, quantization and rANS symbols at once, wavefront after wavefront.
Contexts and entropy parameters are computed in float64 and the means snapped to a 2^-16 grid, as the
hyperprior's, so the decoder's ``means``, ``scales`` and ``y_hat`` equal the encoder's bit for bit on
any machine. A quantizer codes each wavefront's positions as its own trellises: USQ rounds, TCQ runs
one Viterbi search across the channels of each position (its ``position`` layout).

Training follows CompressAI: the context sees ``y`` perturbed by a surrogate whose value does not
depend on the means (:meth:`lic.quantizers.Quantizer.perturb_alone`), and the likelihood is that of
the perturbed ``y`` under the context's means and scales. Phase 4 retrains ``h_s``, the context
prediction and the entropy parameters with ``g_s`` (:meth:`SpatialContext.requantize`).
"""

from __future__ import annotations

from typing import Any

import torch
from compressai.models import Cheng2020Anchor as _Cheng2020Anchor
from compressai.models import Cheng2020Attention as _Cheng2020Attention
from compressai.models import JointAutoregressiveHierarchicalPriors
from torch import Tensor, nn

from lic.config import ModelConfig
from lic.errors import LicError
from lic.models.hyperprior import CodingModel, exact_call, exact_parameters
from lic.quantizers import Quantizer

KERNEL, PAD = 5, 2
# the causal taps of the 5x5 mask (type A): the two rows above, and two columns back in this row
TAPS = [(di, dj) for di in range(KERNEL) for dj in range(KERNEL) if di < PAD or (di == PAD and dj < PAD)]


def wavefronts(height: int, width: int) -> list[tuple[Tensor, Tensor]]:
    """The positions ``(rows, columns)`` of each wavefront ``3 i + j = t``, in coding order."""
    out = []
    for t in range(3 * (height - 1) + width):
        rows = torch.tensor([i for i in range(height) if 0 <= t - 3 * i < width], dtype=torch.long)
        out.append((rows, t - 3 * rows))
    return out


class SpatialContext(CodingModel):
    """:class:`CodingModel` for CompressAI's joint autoregressive and hierarchical priors."""

    teacher_forced = True

    def surrogate(self, y: Tensor, z_hat: Tensor, q: Quantizer | None = None) -> tuple[Tensor, Tensor]:
        """The context over ``y`` perturbed by ``q``'s surrogate (default the model's), the likelihood of
        that perturbed ``y`` under the context's ``means`` and ``scales``. A surrogate whose noise
        depends on ``y - means`` (TCQ's switching perturbation) takes them from a first pass over
        ``y`` with CompressAI's noise."""
        q = q or self.quantizer
        params = self.h_s(z_hat)
        guess = None
        if q.needs_means:
            with torch.no_grad():
                guess = self._entropy(params, y + torch.rand_like(y) - 0.5)[1]
        y_tilde, width = q.perturb_alone(y, guess)
        scales, means = self._entropy(params, y_tilde)
        return y_tilde, q.likelihood_of(y_tilde, width, means, scales)

    def _entropy(self, params: Tensor, y_hat: Tensor) -> tuple[Tensor, Tensor]:
        """``(scales, means)`` of every position from ``params`` and the masked context of ``y_hat``, at
        once (float32, training): what the sequential coding computes position by position."""
        scales, means = self.entropy_parameters(torch.cat((params, self.context_prediction(y_hat)), 1)).chunk(2, 1)
        return scales, means

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        conv = self.context_prediction
        pointwise = all(m.kernel_size == (1, 1) for m in self.entropy_parameters.modules() if isinstance(m, nn.Conv2d))
        if conv.kernel_size != (KERNEL, KERNEL) or conv.padding != (PAD, PAD) or not pointwise:
            raise LicError(f"{type(self).__name__}: lic codes spatial context models with a {KERNEL}x{KERNEL} masked "
                           "context_prediction and 1x1 entropy_parameters (CompressAI's layout), got kernel "
                           f"{tuple(conv.kernel_size)}" + ("" if pointwise else " and entropy_parameters wider than 1x1"))
        if self.quantizer.name == "tcq":
            self.quantizer = self.quantizer_for("tcq", layout="position")

    def quantizer_for(self, name: str | None = None, **params: Any) -> Quantizer:
        """As :meth:`CodingModel.quantizer_for`; TCQ always runs one trellis per position across the
        channels (``layout: position``): each position's means and scales are known before any of its
        channels is chosen, and not before the positions decoded ahead of it."""
        if (name or self.config.quantizer) == "tcq":
            params = {**params, "layout": "position"}
        return super().quantizer_for(name, **params)

    def hyper_parameters(self, z_hat: Tensor) -> Tensor:
        """``params = h_s(z_hat)`` in float64: the hyperprior's half of the entropy parameters."""
        return exact_call(self.h_s, z_hat)

    def analyze(self, x: Tensor) -> dict[str, Any]:
        """The encoder's front half: ``y``, the ``z`` strings and ``z_hat``, and ``params``; the
        ``means`` and ``scales`` come position by position with the coding (:meth:`code_latents`)."""
        y = self.g_a(x)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        return {"y": y, "z_strings": z_strings, "shape": z.size()[-2:], "z_hat": z_hat,
                "params": self.hyper_parameters(z_hat)}

    def _context_weights(self, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """The masked convolution's causal taps: ``(weights 2M x M x taps, bias 2M)``."""
        conv = self.context_prediction
        w = (conv.weight.detach() * conv.mask).to(dtype)
        return torch.stack([w[:, :, di, dj] for di, dj in TAPS], -1), conv.bias.detach().to(dtype)

    def _wavefront_parameters(self, y_hat: Tensor, params: Tensor, rows: Tensor, cols: Tensor,
                              weights: tuple[Tensor, Tensor], exact: bool) -> tuple[Tensor, Tensor]:
        """``(scales, means)`` of the positions ``(rows, cols)``, ``B x P x M``, from the padded ``y_hat``
        decoded so far and ``params``: exact (float64, means snapped: coding) or in float32 (training)."""
        w, bias = weights
        taps = torch.stack([y_hat[:, :, rows + di, cols + dj] for di, dj in TAPS], -1)  # B x M x P x taps
        ctx = torch.einsum("bmpk,omk->bpo", taps, w) + bias
        hyper = params[:, :, rows, cols].permute(0, 2, 1)  # B x P x 2M
        B, P = hyper.shape[:2]
        inputs = torch.cat((hyper, ctx), -1).reshape(B * P, -1, 1, 1)
        if exact:
            scales, means = exact_parameters(exact_call(self.entropy_parameters, inputs))
        else:
            scales, means = self.entropy_parameters(inputs).chunk(2, 1)
        return scales.reshape(B, P, -1), means.reshape(B, P, -1)

    def code_latents(self, a: dict[str, Any], q: Quantizer, exact: bool = True) -> dict[str, Tensor]:
        """Quantize ``a["y"]`` wavefront by wavefront: ``indices``, ``y_hat``, and the ``means`` and
        ``scales`` each position was quantized (and is coded) with; ``exact``: as the coder does
        (float64, means snapped), else in float32 from ``a["params"]`` as training computes it."""
        y, params = a["y"], a["params"]
        B, M, H, W = y.shape
        dtype = torch.float64 if exact else y.dtype
        y_hat = torch.zeros(B, M, H + 2 * PAD, W + 2 * PAD, dtype=dtype, device=y.device)
        out = {"indices": torch.zeros(B, M, H, W, dtype=torch.int32, device=y.device),
               "means": torch.zeros_like(y), "scales": torch.zeros_like(y)}
        weights = self._context_weights(dtype)
        for rows, cols in wavefronts(H, W):
            rows, cols = rows.to(y.device), cols.to(y.device)
            scales, means = self._wavefront_parameters(y_hat, params, rows, cols, weights, exact)
            part = lambda t: t.reshape(-1, M, 1, 1)  # noqa: E731 - each position its own trellis
            yp = y[:, :, rows, cols].permute(0, 2, 1)
            k = q.quantize(part(yp), part(means), part(scales)).reshape(B, -1, M)
            y_hat[:, :, rows + PAD, cols + PAD] = q.dequantize(part(k), part(means)).reshape(B, -1, M).permute(0, 2, 1).to(dtype)
            for name, t in (("indices", k), ("means", means), ("scales", scales)):
                out[name][:, :, rows, cols] = t.permute(0, 2, 1).to(out[name].dtype)
        out["y_hat"] = y_hat[:, :, PAD:-PAD, PAD:-PAD].float()
        return out

    def compress(self, x: Tensor, quantizer: Quantizer | None = None) -> dict[str, Any]:
        """Real bitstreams, one per image: the wavefronts' symbols in coding order."""
        q = quantizer or self.quantizer
        a = self.analyze(x)
        c = self.code_latents(a, q)
        H, W = c["indices"].shape[-2:]
        fronts = wavefronts(H, W)
        y_strings = []
        for i in range(len(x)):
            parts = [(c["indices"][i, :, r, col].T.reshape(-1, self.M, 1, 1), c["scales"][i, :, r, col].T
                      .reshape(-1, self.M, 1, 1)) for r, col in fronts]
            y_strings.append(q.encode_parts(parts))
        return {"strings": [y_strings, a["z_strings"]], "shape": a["shape"], "y_hat": c["y_hat"],
                "means": c["means"], "scales": c["scales"]}

    def decompress(self, strings: list[list[bytes]], shape: torch.Size,
                   quantizer: Quantizer | None = None) -> dict[str, Tensor]:
        """Inverse of :meth:`compress`, wavefront by wavefront: ``x_hat``, ``y_hat``, ``means``, ``scales``."""
        q = quantizer or self.quantizer
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        params = self.hyper_parameters(z_hat)
        B, H, W, M = z_hat.shape[0], 4 * shape[0], 4 * shape[1], self.M
        y_hat = torch.zeros(B, M, H + 2 * PAD, W + 2 * PAD, dtype=torch.float64, device=z_hat.device)
        means_ = torch.zeros(B, M, H, W, device=z_hat.device)
        scales_ = torch.zeros_like(means_)
        weights = self._context_weights()
        readers = [q.decoder(s) for s in strings[0]]
        for rows, cols in wavefronts(H, W):
            rows, cols = rows.to(z_hat.device), cols.to(z_hat.device)
            scales, means = self._wavefront_parameters(y_hat, params, rows, cols, weights, exact=True)
            for i, read in enumerate(readers):
                part = lambda t: t[i].reshape(-1, M, 1, 1)  # noqa: E731
                k = read(part(scales)).to(means.device)
                y_hat[i, :, rows + PAD, cols + PAD] = q.dequantize(k, part(means)).reshape(-1, M).T.double()
            means_[:, :, rows, cols] = means.permute(0, 2, 1)
            scales_[:, :, rows, cols] = scales.permute(0, 2, 1)
        y_hat = y_hat[:, :, PAD:-PAD, PAD:-PAD].float()
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1), "y_hat": y_hat, "means": means_, "scales": scales_}

    def entropy_decoders(self) -> list[nn.Module]:
        return [self.h_s, self.context_prediction, self.entropy_parameters]

    def requantize(self, latent: Tensor, z_hat: Tensor, q: Quantizer,
                   context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Phase 4's differentiable pass: ``(y_hat, likelihoods)``, ``(scales, means)`` from ``h_s(z_hat)``
        and the masked context, ``y_hat = means + level(k)``.

        int32 ``latent`` (stale): the dataset's indices, the context teacher-forced from its stored
        ``y_hat`` (``context``), which differs from the new ``y_hat`` as the means move. Else ``y``
        (online): quantized again position by position under the current networks (wavefronts, no
        gradient), then the context taken from that ``y_hat``; the rate's gradient in ``means`` is the
        training surrogate's, as for every kind (:meth:`lic.quantizers.Quantizer.requantize`).
        """
        params = self.h_s(z_hat)
        if latent.dtype == torch.int32:
            if context is None:
                raise LicError("stale phase 4 on a spatial context model needs the dataset's y_hat as its context")
            scales, means = self._entropy(params, context)
            k, likelihoods = q.requantize(latent, means, scales)
            return q.dequantize(k, means), likelihoods
        with torch.no_grad():
            c = self.code_latents({"y": latent, "params": params.detach()}, q, exact=False)
        scales, means = self._entropy(params, c["y_hat"])
        return q.dequantize(c["indices"], means), q.online_likelihoods(latent, c["indices"], means, scales)


class Mbt2018(SpatialContext, JointAutoregressiveHierarchicalPriors):
    """Joint autoregressive and hierarchical priors (CompressAI's ``mbt2018``)."""


class Cheng2020Anchor(SpatialContext, _Cheng2020Anchor):
    """Cheng et al.'s anchor: residual transforms and the same context model (``cheng2020-anchor``);
    ``M = N``."""

    CHANNELS = ("N",)


class Cheng2020Attention(SpatialContext, _Cheng2020Attention):
    """Cheng et al.'s model with attention modules (``cheng2020-attn``); ``M = N``."""

    CHANNELS = ("N",)
