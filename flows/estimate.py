"""The expected run time of a profile, from its own stage list (:func:`flows.stages.stages`): for each
kind of stage, runs x steps (patches, codings) at a throughput measured on a named machine.

    python -m flows.estimate [PROFILE ...]      # default: every profile in profiles/

Throughputs are measurements, each with its source (:data:`TRAINING`, :data:`CODING`, and for a model
kind other than the hyperprior :data:`MEASURED_KINDS`); a profile whose model kind, size or device has
none says so instead of guessing. Where retraining was not measured apart, its steps are counted at
the training step's rate, an upper bound: phase 3 trains ``g_s`` alone.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from flows.common import model_section
from flows.stages import Stage, stages
from lic import profiles
from lic.config import LATENT_STRIDE, EvaluateConfig, RetrainPlan
from lic.sources import registry
from lic.errors import LicError

# training steps/s of a hyperprior by (device, N, M, patch size, batch size): a measurement, and where
TRAINING: dict[tuple[str, int, int, int, int], tuple[float, str]] = {
    ("cuda", 64, 96, 128, 16): (42.0, "one H200, `lic train`"),
    ("cuda", 128, 192, 256, 16): (63.0, "one H200, `lic train`"),
    ("cpu", 64, 96, 128, 8): (5.6, "2 CPU cores, `python bench/estimate_rates.py`"),
}
# retraining steps/s (phases 3 and 4 and the control alike, within 20%), where measured apart from training
RETRAINING: dict[tuple[str, int, int, int, int], tuple[float, str]] = {
    ("cpu", 64, 96, 128, 8): (11.0, "2 CPU cores, `python bench/estimate_rates.py`"),
}
# model.kind -> (factor on the time of its training and retraining steps at the rates above, the devices
# that factor holds on (None: any), factor on the time of its codings), from the lab notebook; a kind
# not listed (the spatial context models, which code position by position) has no measured rate, nor
# a kind's steps on another device. channel-context: codings 1.41, the larger of its encode and decode times
# against the hyperprior's (2026-11-28-context-model-demo-scale.md, "Coding time"); steps 0.91, the
# demo-context and cpu-context runs (2026-11-25-profile-wall-times.md, "Profile wall times": 1,574 s,
# and 8,422 s less its 45-minute pause, on 2 CPU cores) less their stage starts, latents and
# evaluations, against what the rates above give for their steps: (911 + 4,686 s) / (975 + 5,177 s).
# Those rates run slow against whole runs (the demo: 27 min estimated, 24.5 min measured in the same
# entry), so the factor corrects both the rates and the kind.
MEASURED_KINDS: dict[str, tuple[float, tuple[str, ...] | None, float]] = {
    "hyperprior": (1.0, None, 1.0),
    "channel-context": (0.91, ("cpu",), 1.41),
}
# encode + decode seconds per megapixel of one image on CPU, by (N, M) (evaluations run on CPU)
CODING: dict[tuple[int, int], tuple[float, str]] = {
    (64, 96): (0.92, "2 CPU cores, `python bench/estimate_rates.py`"),
    (128, 192): (2.26, "2 CPU cores, `python bench/estimate_rates.py`"),
}
TRELLIS_RATE = 20e6  # latent elements/s of the 8-state Viterbi search on one core (bench/tcq_speed.py)
STAGE_START = 9.0  # seconds a stage costs beyond its work (Python, torch and Prefect starting), 2 CPU cores
IMAGES = {"bundled-test": (7, 0.214), "kodak": (24, 0.393)}  # images and megapixels each, where known


@dataclass
class Line:
    what: str
    count: str
    seconds: float | None  # None: not measured
    note: str = ""


def _runs(stage: Stage, params: dict[str, Any]) -> int:
    """How many stages a loop expands to."""
    def size(value: Any) -> int:
        if isinstance(value, list):
            return len(value)
        if value == "${lmbdas}":
            return len(params["lmbdas"])
        if value == "${evaluate.codecs}":
            return len(EvaluateConfig(**params["evaluate"]).codecs)
        raise LicError(f"cannot count the loop {value!r} of stage {stage.name}")
    if stage.foreach is not None:
        return size(stage.foreach)
    return math.prod(size(v) for v in stage.matrix.values()) if stage.matrix else 1


def _rate(table: dict, device: str, params: dict[str, Any], patch: int, batch: int) -> tuple[float, str] | None:
    m = model_section(params)
    device = device.split(":")[0]
    factor, devices, _ = MEASURED_KINDS.get(m.get("kind", "hyperprior"), (None, (), None))
    rate = table.get((device, int(m["N"]), int(m["M"]), patch, batch))
    if rate is None or factor is None or devices is not None and device not in devices:
        return None
    return _scaled(rate[0] / factor, rate[1], factor)


def _scaled(value: float, source: str, factor: float) -> tuple[float, str]:
    """A rate or a time, with its source naming a model kind's factor (:data:`MEASURED_KINDS`)."""
    return value, source if factor == 1.0 else f"{source}, x {factor:g} (lab notebook)"


def estimate(params: dict[str, Any]) -> list[Line]:
    """The profile's stages, by kind, with their expected seconds."""
    every = stages(params)
    recipe = params["pretrain"]["recipe"]
    plan, run = RetrainPlan.split(params.get("retrain", {}))
    lines = []
    train = [(s, _runs(s, params)) for s in every if s.flow == "pretrain"]
    if train:
        steps = sum(n * params["pretrain"]["base" if s.args[1] == "base" else "finetune"]["steps"] for s, n in train)
        base = params["pretrain"].get("base", {})
        rate = _rate(TRAINING, recipe.get("device", "cpu"), params, recipe["patch_size"],
                     base.get("batch_size", recipe["batch_size"]))
        lines.append(Line("training", f"{sum(n for _, n in train)} runs, {steps:,} steps",
                          steps / rate[0] if rate else None, rate[1] if rate else ""))
    retrain = sum(_runs(s, params) for s in every if s.flow == "retrain")
    if retrain:
        steps = retrain * run.get("steps", 500)
        key = (run.get("device", "cpu"), params, params["latents"]["patch_size"], run.get("batch_size", 8))
        rate, bound = _rate(RETRAINING, *key), ""
        if rate is None:  # a training step's rate bounds a retraining step's: phase 3 trains g_s alone
            rate, bound = _rate(TRAINING, *key), "at most; "
        lines.append(Line("retraining", f"{retrain} runs, {steps:,} steps", steps / rate[0] if rate else None,
                          f"{bound}{rate[1]}" if rate else ""))
    latents = [(s, _runs(s, params)) for s in every if s.flow == "make_latents"]
    tcq = sum(n for s, n in latents if s.args[0] == "tcq")
    elements = params["latents"]["patches"] * model_section(params)["M"] * (params["latents"]["patch_size"] // LATENT_STRIDE) ** 2
    lines.append(Line("latent datasets", f"{sum(n for _, n in latents)} of {params['latents']['patches']:,} patches",
                      tcq * elements / TRELLIS_RATE, f"the TCQ search on one core; {tcq} TCQ datasets"))
    evals = sum(_runs(s, params) for s in every if s.flow == "evaluate" and s.name.startswith("evaluate"))
    images = IMAGES.get(params["data"]["test_images"])
    m = model_section(params)  # a context model codes at another rate (a spatial one position by position)
    coding = CODING.get((int(m["N"]), int(m["M"])))
    factor = MEASURED_KINDS.get(m.get("kind", "hyperprior"), (None, (), None))[2]
    coding = _scaled(coding[0] * factor, coding[1], factor) if coding and factor else None
    codings = evals * len(params["lmbdas"]) * images[0] if images else None
    lines.append(Line("evaluation", f"{evals} families x {len(params['lmbdas'])} lambdas"
                      + (f" x {images[0]} images" if images else ""),
                      codings * images[1] * coding[0] if codings and coding else None, coding[1] if coding else ""))
    count = sum(_runs(s, params) for s in every)
    lines.append(Line("stages", f"{count}", count * STAGE_START, f"{STAGE_START:.0f} s each to start"))
    return lines


def _minutes(seconds: float | None) -> str:
    return "not measured" if seconds is None else f"{seconds / 60:,.1f} min"


def total(params: dict[str, Any]) -> str:
    """``about N min`` for the stages with a measured throughput, naming those without one."""
    lines = estimate(params)
    known = [ln.seconds for ln in lines if ln.seconds is not None]
    missing = [ln.what for ln in lines if ln.seconds is None]
    return f"about {sum(known) / 60:,.0f} min" + (f", plus {' and '.join(missing)} (not measured)" if missing else "")


def report(name: str, params: dict[str, Any]) -> str:
    lines = estimate(params)
    out = [f"{name}:"]
    out += [f"  {ln.what:<16} {ln.count:<38} {_minutes(ln.seconds):>14}  {ln.note}".rstrip() for ln in lines]
    downloads = [n for n in {params["data"]["train_images"], params["data"]["test_images"]}
                 if n in registry() and registry()[n].files]
    out.append(f"  {'total':<16} {total(params)}" + (f", plus the downloads ({', '.join(sorted(downloads))})" if downloads else ""))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    try:
        for name in argv or profiles.names():
            print(report(name, profiles.resolve(name)))
    except LicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
