"""Typed configuration. Numbers live in ``params.yaml``; these classes give them types."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lic.errors import LicError


DATA_DIR = Path("artifacts/data")  # the data sets the pipeline gets, one folder each (artifacts/data/<name>)
GRANULARITY = 64  # g_a and h_a downsample by 2^6 in all: image sizes the network sees, patch sizes
LATENT_STRIDE = 16  # g_a alone downsamples by 2^4


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise LicError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    return cls(**data)


# the model families of lic.models.MODELS; a name's position is its id in .lic headers (append only)
ARCHITECTURES = ("mean-scale-hyperprior", "channel-context", "scale-hyperprior", "mbt2018", "cheng2020-anchor",
                 "cheng2020-attn")
KINDS = {"hyperprior": "mean-scale-hyperprior", "channel-context": "channel-context",  # params.yaml's model.kind
         "scale-hyperprior": "scale-hyperprior", "mbt2018": "mbt2018", "cheng2020-anchor": "cheng2020-anchor",
         "cheng2020-attn": "cheng2020-attn"}
# a model of the user's own (lic.models.plugin): an importable CompressAI class named module:Class
PLUGIN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def is_plugin(kind: str) -> bool:
    """Whether a model kind or architecture names a user's class, ``module:Class``."""
    return PLUGIN.fullmatch(kind) is not None


def kind_architecture(kind: str) -> str:
    """The architecture of a model kind (``params.yaml``'s ``model.kind``, ``lic train --kind``): a name of
    :data:`KINDS`, or a user's ``module:Class`` as it is."""
    if is_plugin(kind):
        return kind
    if kind not in KINDS:
        raise LicError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}, or name a class of "
                       "your own as module:Class")
    return KINDS[kind]


# CompressAI's zoo models that lic.zoo imports, and the model kind each becomes
ZOO_KINDS = {"bmshj2018-hyperprior": "scale-hyperprior", "mbt2018-mean": "mean-scale-hyperprior", "mbt2018": "mbt2018",
             "cheng2020-anchor": "cheng2020-anchor", "cheng2020-attn": "cheng2020-attn"}
ZOO = tuple(ZOO_KINDS)
CONTEXTS = ("perturbed", "quantized")  # what earlier slices give later ones in a channel-context model's training
# the choices of the quantizers' parameters (lic.quantizers), here so that the command line lists them cheaply
# Each quantizer by name: its class, which lic.quantizers imports when it is first used (so that a
# pipeline stage depends only on the quantizers it runs: flows.deps.stage_code), and its id in stream
# headers (the class's ``code``; a header's id names the first with it: RDOQ writes USQ's streams)
QUANTIZER_CLASSES: dict[str, tuple[str, int]] = {"usq": ("lic.quantizers.usq:USQ", 0),
                                                 "tcq": ("lic.quantizers.tcq:TCQ", 1),
                                                 "rdoq": ("lic.quantizers.rdoq:RDOQ", 0)}
QUANTIZER_NAMES = tuple(QUANTIZER_CLASSES)
# a quantizer that trains with another's surrogate (its class inherits it) codes that one's models
# (RDOQ: USQ's noise); a pipeline gives it that one's phase-1 models and controls, the same runs
SHARES_SURROGATE = {"rdoq": "usq"}
# those with a training surrogate of their own: what models are trained for, and what phase 1 runs for
TRAINING_QUANTIZERS = tuple(q for q in QUANTIZER_CLASSES if q not in SHARES_SURROGATE)
LAYOUTS = ("channel", "position", "single", "row")  # TCQ: what one trellis runs over; the index is the header's
PERTURBATIONS = ("switch", "uniform", "union")  # TCQ's training surrogates
TABLES = ("fitted", "analytic")  # a model's fitted tables where it has them (lic.tables), or the Gaussian's
WEIGHTINGS = ("decoder", "none")  # TCQ: the search's distortion weights
BD_METHODS = ("pchip", "akima", "cubic")  # BD-rate interpolations (lic.bdrate)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a model and the quantizer it is trained for; ``slices``: the channel slices
    of ``channel-context`` (``M`` divisible by it), ``context``: its training contexts (``CONTEXTS``,
    see :meth:`lic.models.channel_context.ChannelContext.training_context`)."""

    architecture: str = "mean-scale-hyperprior"
    N: int = 64
    M: int = 96
    quantizer: str = "usq"
    quantizer_params: dict[str, Any] = field(default_factory=dict)  # e.g. TCQ delta, states
    slices: int = 0
    context: str = "perturbed"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES and not is_plugin(self.architecture):
            raise LicError(f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}, "
                           "or a class of your own as module:Class")
        if self.quantizer not in QUANTIZER_NAMES:
            raise LicError(f"unknown quantizer {self.quantizer!r}; choose one of {', '.join(TRAINING_QUANTIZERS)}")
        if self.quantizer not in TRAINING_QUANTIZERS:
            raise LicError(f"a model is trained for one of {', '.join(TRAINING_QUANTIZERS)}, not {self.quantizer!r} "
                           "(rdoq trains with usq's noise: train for usq, then code with rdoq)")
        if not (1 <= self.N <= 1024 and 1 <= self.M <= 1024):
            raise LicError(f"channels must lie in 1..1024, got N={self.N}, M={self.M}")
        context = self.architecture == "channel-context"
        if context and not (self.slices >= 1 and self.M % self.slices == 0):
            raise LicError(f"channel-context needs slices that divide M={self.M}, got {self.slices}")
        if not context and self.slices:
            raise LicError(f"{self.architecture} has no channel slices")
        if self.context not in CONTEXTS:
            raise LicError(f"unknown training context {self.context!r}; choose one of {', '.join(CONTEXTS)}")
        if not context and self.context != "perturbed":
            raise LicError(f"{self.architecture} has no slice contexts")
        if self.architecture.startswith("cheng2020") and self.M != self.N:
            raise LicError(f"{self.architecture} has M = N, got N={self.N}, M={self.M}")

    def to_dict(self) -> dict[str, Any]:
        """Fields at their defaults that older checkpoints lack are left out, so those read as before."""
        d = asdict(self)
        return {k: v for k, v in d.items() if not (k == "slices" and not v or k == "context" and v == "perturbed")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data, "model config")

    @classmethod
    def from_params(cls, model: dict[str, Any], quantizer: str, quantizer_params: dict[str, Any]) -> "ModelConfig":
        """``params.yaml``'s ``model`` section: ``N``, ``M``, ``kind`` (``hyperprior``, the default;
        ``channel-context`` with its ``slices`` and, optionally, training ``context``; ``scale-hyperprior``,
        ``mbt2018``, ``cheng2020-anchor``, ``cheng2020-attn``; or a class of the user's own,
        ``module:Class``)."""
        return cls(architecture=kind_architecture(model.get("kind", "hyperprior")), N=model["N"], M=model["M"], quantizer=quantizer,
                   quantizer_params=quantizer_params, slices=int(model.get("slices", 0)),
                   context=model.get("context", "perturbed"))


@dataclass(frozen=True)
class TrainConfig:
    """Phase-1 training: loss ``lmbda * 255^2 * MSE + bpp`` (CompressAI's convention).

    The learning rate drops by 10x at each fraction of ``steps`` in ``lr_drops``. Patches are
    drawn at random scales down to ``min_scale`` (see :class:`lic.data.PatchSampler`).
    """

    lmbda: float = 0.013
    steps: int = 2000
    batch_size: int = 8
    patch_size: int = 128
    min_scale: float = 1.0
    lr: float = 1e-3
    lr_drops: tuple[float, ...] = (0.7, 0.9)
    aux_lr: float = 1e-3
    clip_max_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.lmbda <= 0:
            raise LicError(f"lambda must be positive, got {self.lmbda}")
        if self.steps < 1 or self.batch_size < 1:
            raise LicError("steps and batch size must be at least 1")
        if self.patch_size < GRANULARITY or self.patch_size % GRANULARITY:
            raise LicError(f"patch size must be a multiple of {GRANULARITY}, got {self.patch_size}")
        if not 0 < self.min_scale <= 1:
            raise LicError(f"min_scale must lie in (0, 1], got {self.min_scale}")
        object.__setattr__(self, "lr_drops", tuple(self.lr_drops))

    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (0-based): ``lr * 0.1^(number of drops passed)``."""
        passed = sum(step >= int(f * self.steps) for f in self.lr_drops)
        return self.lr * 0.1**passed


def dump_training(model: ModelConfig, train: TrainConfig) -> str:
    """A training run's whole typed configuration as one JSON text (``lic train --config``): what
    torchrun's workers get, so that no field is lost in a hand-made flag list."""
    return json.dumps({"model": model.to_dict(), "train": asdict(train)}, sort_keys=True)


def load_training(text: str) -> tuple[ModelConfig, TrainConfig]:
    """The inverse of :func:`dump_training`; one clear line for anything else."""
    try:
        data = json.loads(text)
        model, train = data["model"], data["train"]
    except (ValueError, TypeError, KeyError):
        raise LicError("--config takes the JSON of a training run: {\"model\": {...}, \"train\": {...}}") from None
    return ModelConfig.from_dict(model), _from_dict(TrainConfig, train, "training config")


RETRAIN_MODES = ("decoder", "control", "hyper-decoder", "hyper-control")  # lic retrain's modes, each a pipeline family
CONTROLS = {"decoder": "control", "hyper-decoder": "hyper-control"}  # each phase's control: the same parameters,
# steps, loss and learning rate, on the training surrogate instead of true quantization
HYPER_MODES = ("hyper-decoder", "hyper-control")  # the modes that train the entropy decoders too, on rate plus distortion
STRATEGIES = ("online", "stale")  # how phase 4 gets the indices of each batch (see lic.retrain)


@dataclass(frozen=True)
class RetrainConfig:
    """Phases 3 and 4 and the control (see :mod:`lic.retrain`); Adam at a constant ``lr``.

    ``strategy`` (hyper-decoder only): ``online`` re-quantizes every batch under the current
    ``means`` and ``scales``; ``stale`` keeps the dataset's indices. ``weighting_every``: an
    ``online`` TCQ search weighted by the decoder takes ``g_s``'s channel sensitivity afresh every
    this many steps (one backward pass of ``g_s`` each, about 2.5 steps' worth at M=96).
    ``checkpoint_every``: steps between the states that a killed run resumes from.
    ``validation``: the fraction of patches held out; the weights with the lowest loss on them,
    measured every ``validate_every`` steps, are kept (see :mod:`lic.retrain`). ``lookahead``
    (``online`` only): the next batch's indices are searched on a worker thread while this step
    runs, under this step's weights: one step stale (:mod:`lic.lookahead`).
    """

    mode: str
    steps: int = 500
    batch_size: int = 8
    lr: float = 1e-4
    lmbda: float | None = None  # hyper-decoder and hyper-control only; default: the checkpoint's training lambda
    seed: int = 0
    device: str = "cpu"
    allow_stale: bool = False
    strategy: str = "online"
    weighting_every: int = 100
    validation: float = 0.0  # fraction of the patches held out for early stopping (0: none)
    validate_every: int = 50
    checkpoint_every: int = 100  # steps between the states a killed run continues from (resume)
    lookahead: bool = False  # online phase 4: search the next batch while this step runs (one step stale)

    def __post_init__(self) -> None:
        if self.mode not in RETRAIN_MODES:
            raise LicError(f"unknown retraining mode {self.mode!r}; choose one of {RETRAIN_MODES}")
        if self.strategy not in STRATEGIES:
            raise LicError(f"unknown retraining strategy {self.strategy!r}; choose one of {STRATEGIES}")
        if min(self.steps, self.batch_size, self.weighting_every, self.validate_every, self.checkpoint_every) < 1 \
                or self.lr <= 0:
            raise LicError("steps, batch size, weighting_every, validate_every and checkpoint_every must be at least 1 "
                           "and the learning rate positive")
        if not 0 <= self.validation < 1:
            raise LicError(f"validation must be a fraction in [0, 1), got {self.validation}")


@dataclass(frozen=True)
class Family:
    """A family of retrained models, named ``<mode>[-stale][-r<round>]``: phase 3 (``decoder``),
    phase 4 (``hyper-decoder``, with ``online`` or ``stale`` indices) or their controls (``control``,
    ``hyper-control``). Round ``r > 1`` retrains round ``r - 1``'s models for as many steps again, on
    a dataset made from them (a control on the first dataset: its surrogate does not depend on the
    weights that it retrains)."""

    mode: str
    strategy: str = "online"
    round: int = 1

    @property
    def name(self) -> str:
        return self.mode + ("-stale" if self.strategy == "stale" else "") + (f"-r{self.round}" if self.round > 1 else "")

    @classmethod
    def parse(cls, name: str) -> "Family":
        mode, _, last = name.rpartition("-r")
        rnd = int(last) if mode and last.isdigit() and int(last) > 1 else 1
        mode = mode if rnd > 1 else name
        strategy = "stale" if mode.endswith("-stale") else "online"
        mode = mode.removesuffix("-stale")
        fam = cls(mode, strategy, rnd)
        if mode not in RETRAIN_MODES or fam.name != name or (strategy == "stale" and mode != "hyper-decoder"):
            raise LicError(f"not a retraining family: {name!r} (<mode>[-stale][-r<round>], mode one of {RETRAIN_MODES})")
        return fam

    def previous(self) -> "Family | None":
        """The family this one continues (round ``r - 1``), or ``None`` for round 1."""
        return Family(self.mode, self.strategy, self.round - 1) if self.round > 1 else None

    @property
    def is_control(self) -> bool:
        return self.mode in CONTROLS.values()

    @property
    def control(self) -> "Family":
        """This family's control, of the same round (a control is its own)."""
        return self if self.is_control else Family(CONTROLS[self.mode], round=self.round)

    @property
    def new_latents(self) -> bool:
        """Whether this round quantizes its training latents afresh (from the previous round's models)."""
        return self.round > 1 and not self.is_control


@dataclass(frozen=True)
class RetrainPlan:
    """The families the pipeline retrains: phase 4 with each of ``strategies``, and ``rounds``
    rounds of every mode whose dataset depends on what it retrains (TCQ's decoder, whose
    sensitivity weights the search; phase 4 with stale indices), each with a control round.
    RDOQ's decoder weights its search too, but RDOQ has USQ's families (it reuses their controls),
    so it retrains in one round."""

    strategies: tuple[str, ...] = ("online",)
    rounds: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategies", tuple(self.strategies))
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad or not self.strategies or len(set(self.strategies)) < len(self.strategies):
            raise LicError(f"retrain.strategies must list some of {STRATEGIES} once each, got {list(self.strategies)}")
        if not 1 <= self.rounds <= 9:
            raise LicError(f"retrain.rounds must lie in 1..9, got {self.rounds}")

    @classmethod
    def split(cls, section: dict[str, Any]) -> tuple["RetrainPlan", dict[str, Any]]:
        """A ``retrain`` section of ``params.yaml``: the plan, and the rest (a run's :class:`RetrainConfig`)."""
        rest = dict(section)
        plan = {k: rest.pop(k) for k in ("strategies", "rounds") if k in rest}
        return cls(**plan), rest

    def families(self, quantizer: str) -> tuple[Family, ...]:
        """``quantizer``'s families. One that shares another's surrogate (RDOQ) has that one's
        families but the controls: a control never sees the quantizer, so its runs would be the
        same, and it reuses them."""
        if quantizer in SHARES_SURROGATE:
            return tuple(f for f in self.families(SHARES_SURROGATE[quantizer]) if not f.is_control)
        first = [Family("decoder"), Family("control"), *(Family("hyper-decoder", s) for s in self.strategies),
                 Family("hyper-control")]
        again = [f for f in first if (f.mode, quantizer) == ("decoder", "tcq") or f.strategy == "stale"]
        again += list(dict.fromkeys(f.control for f in again))
        return tuple(first) + tuple(Family(f.mode, f.strategy, r) for r in range(2, self.rounds + 1) for f in again)


@dataclass(frozen=True)
class LatentsConfig:
    """Phase 2: ``patches`` random training patches of ``patch_size``, ``chunk`` per Zarr chunk;
    chunk ``i`` is drawn from ``(seed, i)``. The pipeline writes ``shards`` shards concurrently
    (whole chunks each; the arrays do not depend on it)."""

    patches: int = 256
    patch_size: int = 128
    chunk: int = 16
    seed: int = 0
    device: str = "cpu"
    shards: int = 1

    def __post_init__(self) -> None:
        if self.patches < 1 or self.chunk < 1 or self.patch_size < GRANULARITY or self.patch_size % GRANULARITY:
            raise LicError(f"need patches >= 1, chunk >= 1 and a patch size that is a multiple of {GRANULARITY}")
        if not 1 <= self.shards <= -(-self.patches // self.chunk):
            raise LicError(f"latents.shards must lie between 1 and the number of chunks, got {self.shards}")


CLASSICAL_CODECS = ("jpeg", "webp", "avif")  # the anchors Pillow writes


@dataclass(frozen=True)
class EvaluateConfig:
    """Classical anchors and their quality sweep (Pillow's 0-100 scale), and the quantizers that
    ``coding`` names: every base model is also coded with each (its own, always), so that the
    report separates the training surrogate from the coding quantizer (:func:`coded_base`)."""

    codecs: tuple[str, ...] = CLASSICAL_CODECS
    qualities: tuple[int, ...] = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    coding: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "codecs", tuple(self.codecs))
        object.__setattr__(self, "qualities", tuple(int(q) for q in self.qualities))
        object.__setattr__(self, "coding", tuple(self.coding))
        bad = [q for q in self.coding if q not in QUANTIZER_NAMES]
        if bad or len(set(self.coding)) < len(self.coding):
            raise LicError(f"evaluate.coding must list some of {QUANTIZER_NAMES} once each, got {list(self.coding)}")


CODED = "base-as-"  # a base model coded with another quantizer than its own: <trained>-base-as-<coding>


def trained_for(quantizer: str) -> str:
    """The quantizer whose training surrogate the models that ``quantizer`` codes are trained with:
    itself, or the one it shares (RDOQ codes USQ's models)."""
    return SHARES_SURROGATE.get(quantizer, quantizer)


def coded_base(trained: str, coding: str) -> str:
    """The variant of the base model trained for ``trained``, coded with ``coding``."""
    return f"{trained}-base" if coding == trained else f"{trained}-{CODED}{coding}"


def coding_of(variant: str) -> tuple[str, str] | None:
    """``(trained, coding)`` of a base model's variant (:func:`coded_base`), else None."""
    trained, _, kind = variant.partition("-")
    if kind == "base":
        return trained, trained
    return (trained, kind.removeprefix(CODED)) if kind.startswith(CODED) else None
