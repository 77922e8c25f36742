"""The hyperpriors of Ballé et al. (ICLR 2018) and Minnen, Ballé and Toderici (NeurIPS 2018) with a
pluggable latent quantizer.

:class:`CodingModel` is what every lic model adds to its CompressAI class: ``y`` goes through a
:class:`~lic.quantizers.Quantizer` (USQ or TCQ), and the decoder-side entropy parameters ``means``
and ``scales`` are computed so that encoder and decoder cannot disagree on them (float64, means
snapped to a 2^-16 grid). :class:`Hyperprior` extends CompressAI's ``MeanScaleHyperprior``
(``mbt2018-mean``), :class:`ScaleHyperprior` its ``ScaleHyperprior`` (``bmshj2018-hyperprior``,
``means = 0``); the transforms ``g_a``, ``g_s``, ``h_a``, ``h_s`` and the entropy bottleneck for
``z`` are CompressAI's.
"""

from __future__ import annotations

from typing import Any

import torch
from compressai.models import MeanScaleHyperprior
from compressai.models import ScaleHyperprior as _ScaleHyperprior
from torch import Tensor
from torch.func import functional_call

from lic.config import TABLES, ModelConfig
from lic.errors import LicError
from lic.quantizers import Quantizer, make_quantizer, quantizer_class, search_lambda
from lic.tables import FittedTables

MEANS_GRID = 2.0**-16  # means are snapped to this grid at coding time


def _weights_key(module: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Changes whenever a weight of ``module`` is written or moved."""
    return tuple((t.data_ptr(), t._version) for t in module.state_dict().values())


def exact_call(module: torch.nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` in float64, on float64 copies of its weights kept on the module until they change.

    Entropy parameters are computed so: a float32 run may differ in its last bits between thread
    counts and devices, which can flip a rounding or a scale bin; in float64 such a flip needs a
    value within ~1e-15 of a boundary.
    """
    key = _weights_key(module)
    cached = module.__dict__.get("_float64")
    if cached is None or cached[0] != key:
        cached = module.__dict__["_float64"] = (key, {n: v.detach().double() for n, v in module.state_dict().items()})
    return functional_call(module, cached[1], (x.double(),))


def exact_parameters(out: Tensor) -> tuple[Tensor, Tensor]:
    """float32 ``(scales, means)`` from :func:`exact_call`'s ``out``, means snapped to the 2^-16 grid."""
    scales, means = out.chunk(2, 1)
    return scales.float(), (torch.round(means / MEANS_GRID) * MEANS_GRID).float()


class CodingModel:
    """Real quantization and coding of ``y`` for a CompressAI model class it is mixed into (first in
    the bases); ``config.N``/``config.M`` channels, ``config.quantizer`` for ``y``. Subclasses say how
    ``z`` is made from ``y`` (:meth:`hyper_analysis`) and ``(scales, means)`` from ``z_hat``
    (:meth:`hyper_synthesis` in training, :meth:`hyper_parameters` at coding time)."""

    CHANNELS = ("N", "M")  # the constructor arguments of the CompressAI class
    lmbda: float | None = None  # the lambda it was trained at, where its checkpoint records one (load_checkpoint)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(**{name: getattr(config, name) for name in self.CHANNELS})
        self.config = config
        self.quantizer: Quantizer = make_quantizer(config.quantizer, self.gaussian_conditional,
                                                   self.decoder_sensitivity, **config.quantizer_params)
        self.fitted_tables = torch.nn.ModuleDict()  # quantizer name -> FittedTables (lic.tables): empty until fitted

    def load_state_dict(self, state_dict: dict[str, Tensor], strict: bool = True) -> Any:
        """CompressAI's, after making room for the fitted tables that ``state_dict`` holds."""
        names = {k.split(".")[1] for k in state_dict if k.startswith("fitted_tables.")}
        for name in sorted(names - set(self.fitted_tables)):
            self.fitted_tables[name] = FittedTables.shaped(state_dict, f"fitted_tables.{name}.")
        return super().load_state_dict(state_dict, strict=strict)

    def quantizer_for(self, name: str | None = None, tables: str = "fitted", **params: Any) -> Quantizer:
        """The model's own quantizer, or another one on the same entropy model.

        Parameters not given default to the checkpoint's (for its own quantizer), then to the
        quantizer's own defaults; a decoder-weighted search gets :meth:`decoder_sensitivity`, and a
        search lambda (``lambda_param``) not given is :meth:`search_lambda`. It codes with the tables
        the model has fitted for it (``fitted_tables``) where they were fitted for the same parameters
        and analytic tables (:meth:`lic.tables.FittedTables.matches`), unless ``tables="analytic"``
        (the control).
        """
        if tables not in TABLES:
            raise LicError(f"unknown tables {tables!r}; choose one of {', '.join(TABLES)}")
        own = self.config
        name = name or own.quantizer
        if name == own.quantizer and not params:
            q = self.quantizer
        else:
            params = {**(own.quantizer_params if name == own.quantizer else {}), **params}
            derived = quantizer_class(name).lambda_param
            if derived and derived not in params:
                params[derived] = self.search_lambda()
            q = make_quantizer(name, self.gaussian_conditional, self.decoder_sensitivity, **params)
        fitted = self.fitted_tables[name] if name in self.fitted_tables else None
        return fitted.apply(q) if tables == "fitted" and fitted is not None and fitted.matches(q) else q

    def search_lambda(self) -> float:
        """:func:`lic.quantizers.search_lambda` of this model: its training lambda and the mean gain of ``g_s``."""
        if self.lmbda is None:
            raise LicError("this checkpoint records no training lambda: give the search's lambda (lambda_rdoq)")
        return search_lambda(self.lmbda, self.decoder_gain())

    def analyze(self, x: Tensor) -> dict[str, Any]:
        """The encoder's front half, shared by coding, latent datasets and benchmarks.

        ``y = g_a(x)``, ``z = h_a(y)`` coded for real (``z_strings``, ``shape``), ``z_hat`` decoded
        from those strings, and the decoder's ``scales``, ``means`` = :meth:`entropy_parameters`.
        """
        y = self.g_a(x)
        z = self.hyper_analysis(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales, means = self.hyper_parameters(z_hat)
        return {"y": y, "z_strings": z_strings, "shape": z.size()[-2:], "z_hat": z_hat, "means": means,
                "scales": scales}

    def forward(self, x: Tensor) -> dict[str, Any]:
        """Training pass with the quantizer's perturbation: ``x_hat`` and ``likelihoods``."""
        y = self.g_a(x)
        z = self.hyper_analysis(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        y_tilde, y_likelihoods = self.surrogate(y, z_hat)
        return {"x_hat": self.g_s(y_tilde), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def surrogate(self, y: Tensor, z_hat: Tensor, q: Quantizer | None = None) -> tuple[Tensor, Tensor]:
        """The training pass from ``z_hat`` on: ``(y_tilde, likelihoods)`` under quantizer ``q``'s training
        surrogate (default the model's), ``means, scales = h_s(z_hat)``; differentiable in the entropy
        decoders (training, and phase 4's control)."""
        scales, means = self.hyper_synthesis(z_hat)
        return (q or self.quantizer).perturb(y, means, scales)

    def hyper_analysis(self, y: Tensor) -> Tensor:
        """``z = h_a(y)``."""
        return self.h_a(y)

    def hyper_synthesis(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """``(scales, means) = h_s(z_hat)`` in float32, differentiable (training, phase 4)."""
        scales, means = self.h_s(z_hat).chunk(2, 1)
        return scales, means

    def hyper_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """``(scales, means)`` from ``z_hat``, reproducible across threads and devices: ``h_s`` in
        float64 (:func:`exact_call`), means snapped to a 2^-16 grid (:func:`exact_parameters`)."""
        return exact_parameters(exact_call(self.h_s, z_hat))

    def synthesis_gains(self, y_hat: Tensor, probes: int = 1, seed: int = 0) -> Tensor:
        """``G_i = ||d g_s / d y_i||^2`` at ``y_hat`` for every latent element, shaped like ``y_hat``.

        Hutchinson: ``||J[:, i]||^2 = E_u[(J^T u)_i^2]`` for ``u ~ N(0, I)``, averaged over ``probes``
        draws of ``u`` (seeded), ``J`` the Jacobian of ``g_s``.
        """
        gen = torch.Generator().manual_seed(seed)
        with torch.inference_mode(False), torch.enable_grad():
            y0 = y_hat.detach().clone().requires_grad_(True)
            x = self.g_s(y0)
            gains = torch.zeros_like(y0)
            for _ in range(probes):
                u = torch.randn(x.shape, generator=gen).to(x.device)
                (g,) = torch.autograd.grad((x * u).sum(), y0, retain_graph=True)
                gains += g.pow(2) / probes
        return gains.detach()

    def channel_gains(self, size: int = 16, probes: int = 8, seed: int = 0) -> Tensor:
        """Per-channel squared gain of ``g_s`` (pixel error per unit latent error, images in [0, 1]):
        :meth:`synthesis_gains` at ``y_hat = 0`` on ``probes`` latents of ``size x size``, averaged
        per channel."""
        device = next(self.parameters()).device
        gain = self.synthesis_gains(torch.zeros(probes, self.M, size, size, device=device), seed=seed)
        return gain.mean(dim=(0, 2, 3))

    def channel_sensitivity(self, size: int = 16, probes: int = 8, seed: int = 0) -> Tensor:
        """:meth:`channel_gains` scaled to mean 1."""
        gain = self.channel_gains(size, probes, seed)
        return gain / gain.mean()

    def _gains(self) -> tuple[Tensor, float]:
        """:meth:`channel_sensitivity` and the mean gain, cached until ``g_s``'s weights change."""
        key = _weights_key(self.g_s)
        if getattr(self, "_sensitivity_key", None) != key:
            gain = self.channel_gains()
            self._sensitivity, self._gain = gain / gain.mean(), float(gain.mean())
            self._sensitivity_key = key
        return self._sensitivity, self._gain

    def decoder_sensitivity(self) -> Tensor:
        """:meth:`channel_sensitivity`, cached until ``g_s``'s weights change (the searches' weights)."""
        return self._gains()[0]

    def decoder_gain(self) -> float:
        """The mean of :meth:`channel_gains` (what :meth:`search_lambda` scales by), cached likewise."""
        return self._gains()[1]

    def code_latents(self, a: dict[str, Any], q: Quantizer) -> dict[str, Tensor]:
        """Quantize the front half's ``a["y"]``: ``indices``, ``y_hat``, and the ``means`` and ``scales``
        they are coded with (a context model's differ from ``a``'s)."""
        indices = q.quantize(a["y"], a["means"], a["scales"])
        return {"indices": indices, "y_hat": q.dequantize(indices, a["means"]), "means": a["means"],
                "scales": a["scales"]}

    def coded_parts(self, c: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """``(indices, scales)`` of each part of :meth:`code_latents`'s ``c`` that a stream codes as a
        whole (a quantizer's trellises do not cross parts): all of it."""
        return [(c["indices"], c["scales"])]

    def entropy_decoders(self) -> list[torch.nn.Module]:
        """What maps ``z_hat`` (and decoded latents) to ``means`` and ``scales``: what phase 4 retrains
        with ``g_s``."""
        return [self.h_s]

    teacher_forced = False  # whether stale phase 4 takes the dataset's y_hat as the context (spatial models)

    def requantize(self, latent: Tensor, z_hat: Tensor, q: Quantizer, context: Tensor | None = None,
                   chosen: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Phase 4's differentiable pass: ``(y_hat, likelihoods)`` with ``means, scales = h_s(z_hat)``
        (float32), ``y_hat = means + level(k)``. ``latent``: ``y``, quantized afresh under the
        current parameters, or int32 indices kept as they are. ``chosen``: ``y``'s indices, chosen
        ahead (:mod:`lic.lookahead`), with online's likelihoods. :class:`Requantizer` makes it a module."""
        scales, means = self.hyper_synthesis(z_hat)
        if chosen is not None:
            return q.dequantize(chosen, means), q.online_likelihoods(latent, chosen, means, scales)
        k, likelihoods = q.requantize(latent, means, scales)
        return q.dequantize(k, means), likelihoods

    def compress(self, x: Tensor, quantizer: Quantizer | None = None) -> dict[str, Any]:
        """Real bitstreams: ``strings = [y_strings, z_strings]``, ``shape`` of ``z``, and ``y_hat``."""
        q = quantizer or self.quantizer
        a = self.analyze(x)
        c = self.code_latents(a, q)
        indices, scales = c["indices"], c["scales"]
        y_strings = [q.encode(indices[i : i + 1], scales[i : i + 1]) for i in range(len(indices))]
        return {"strings": [y_strings, a["z_strings"]], "shape": a["shape"], "y_hat": c["y_hat"]}

    def decompress(self, strings: list[list[bytes]], shape: torch.Size, quantizer: Quantizer | None = None) -> dict[str, Tensor]:
        """Inverse of :meth:`compress`: ``x_hat`` (clamped to [0, 1]) and ``y_hat``."""
        q = quantizer or self.quantizer
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        scales, means = self.hyper_parameters(z_hat)
        indices = torch.cat([q.decode(s, scales[i : i + 1]) for i, s in enumerate(strings[0])]).to(means.device)
        y_hat = q.dequantize(indices, means)
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1), "y_hat": y_hat}


class Hyperprior(CodingModel, MeanScaleHyperprior):
    """The mean-scale hyperprior (CompressAI's ``mbt2018-mean``)."""


class ScaleOnly(CodingModel):
    """:class:`CodingModel` for CompressAI's scale hyperprior layout: ``z = h_a(|y|)``, ``h_s`` gives the
    scales alone and ``means = 0``, so USQ rounds ``y`` itself and TCQ quantizes ``y`` itself."""

    def hyper_analysis(self, y: Tensor) -> Tensor:
        return self.h_a(torch.abs(y))

    def hyper_synthesis(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales = self.h_s(z_hat)
        return scales, torch.zeros_like(scales)

    def hyper_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales = exact_call(self.h_s, z_hat).float()
        return scales, torch.zeros_like(scales)


class ScaleHyperprior(ScaleOnly, _ScaleHyperprior):
    """The scale hyperprior (CompressAI's ``bmshj2018-hyperprior``)."""


class Surrogate(torch.nn.Module):
    """:meth:`CodingModel.surrogate` under quantizer ``q`` as one module whose parameters are the
    model's entropy decoders, so that DDP can wrap it (phase 4's control)."""

    def __init__(self, model: CodingModel, q: Quantizer) -> None:
        super().__init__()
        self.decoders = torch.nn.ModuleList(model.entropy_decoders())
        self.__dict__.update(model=model, q=q)

    def forward(self, y: Tensor, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.surrogate(y, z_hat, self.q)


class Requantizer(torch.nn.Module):
    """:meth:`CodingModel.requantize` under quantizer ``q`` as one module whose parameters are the
    model's entropy decoders (``h_s``, a context model's slice transforms), so that DDP can wrap it."""

    def __init__(self, model: CodingModel, q: Quantizer) -> None:
        super().__init__()
        self.decoders = torch.nn.ModuleList(model.entropy_decoders())
        self.__dict__.update(model=model, q=q)  # not submodules: only the decoders' parameters are its own

    def forward(self, latent: Tensor, z_hat: Tensor, *context: Tensor, **ahead: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.requantize(latent, z_hat, self.q, *context, **ahead)
