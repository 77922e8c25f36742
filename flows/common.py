"""Helpers shared by the flows: params, the artifact paths (the one list; ``flows/stages.py`` makes
``dvc.yaml`` from it), logging into Prefect, and a tiny CLI that checks its arguments."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from prefect import get_run_logger

from flows.deps import code_hash, stage_code
from lic.config import (DATA_DIR, KINDS, QUANTIZER_NAMES, TRAINING_QUANTIZERS, EvaluateConfig, Family, RetrainPlan,
                        coded_base, trained_for)
from lic.sources import registry
from lic.errors import LicError

PARAMS = Path("params.yaml")
DATA = DATA_DIR  # the data sets the pipeline gets: artifacts/data/<name>
ARTIFACTS, REPORTS = Path("artifacts"), Path("reports")
WORK = ARTIFACTS / ".work"  # long stages' unfinished outputs, keyed by their inputs (see work_path)


def image_folder(value: str) -> Path:
    """A profile's ``data.train_images`` or ``data.test_images``: a data set of the registry
    (``kodak``, ``div2k-train``, ``bundled-train``, ... :func:`lic.sources.registry`) lies where the
    pipeline gets it, ``artifacts/data/<name>``; any other value is a folder of the user's own."""
    return DATA / value if value in registry() else Path(value)


def model_section(params: dict[str, Any]) -> dict[str, Any]:
    """``params.yaml``'s ``model`` section; a zoo profile has none, its models being the imported ones
    (those of its first quality: ``kind``, ``N``, ``M``)."""
    if "zoo" not in params:
        return params["model"]
    from lic.zoo import zoo_source  # a zoo profile's stages depend on it: flows.deps.stage_code

    zoo = params["zoo"]
    src = zoo_source(int(next(iter(zoo["qualities"].values()))), zoo["architecture"])
    return {"kind": next(k for k, v in KINDS.items() if v == src["kind"]), "N": src["N"], "M": src["M"]}


def data_sets(params: dict[str, Any]) -> list[str]:
    """The registry's data sets a profile names (each gets a stage of its own), in order."""
    named = [params["data"][k] for k in ("train_images", "test_images")]
    return list(dict.fromkeys(n for n in named if n in registry()))


def work_path(out: Path, inputs: dict[str, Any]) -> Path:
    """Where a long stage builds ``out`` until it is finished: ``artifacts/.work/<out>`` with a key of
    its ``inputs`` (every config value, the fingerprints of what it reads, its code) in the name.

    DVC removes a stage's outputs before running it, so a killed stage's partial output must live
    elsewhere to be continued; keyed so, a rerun with the same inputs continues it, and a rerun with
    other inputs starts afresh. Work of other keys for the same ``out`` is deleted here.
    """
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    rel = Path(out).relative_to(ARTIFACTS) if Path(out).is_relative_to(ARTIFACTS) else Path(Path(out).name)
    work = WORK / rel.parent / f"{rel.stem}.{key}{rel.suffix}"
    for old in work.parent.glob(f"{rel.stem}.*{rel.suffix}"):
        if old.name != work.name and len(old.name) == len(work.name):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)
    return work


def stage_inputs(module: str, quantizers: tuple[str, ...] = (), **inputs: Any) -> dict[str, Any]:
    """A long stage's ``inputs`` for :func:`work_path`, with the hash of the code it runs (its flow
    ``module`` running ``quantizers``: :func:`flows.deps.stage_code`)."""
    params = load_params() if PARAMS.is_file() else {}
    return {"flow": module, "code": code_hash(stage_code(module, params, quantizers)), **inputs}


def publish(work: Path, out: Path) -> None:
    """Move a finished ``work`` (a file, or a folder such as a Zarr group) to ``out``, DVC's output;
    a ``.json`` record beside it goes along."""
    for src, dst in ((work, Path(out)), (work.with_suffix(".json"), Path(out).with_suffix(".json"))):
        if src == work or src.exists():
            if dst.is_dir():
                shutil.rmtree(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)


def run_root(seed: int = 0) -> Path:
    """Where one seed's models, latents and evaluations go: ``artifacts/`` for seed 0,
    ``artifacts/seed-<s>/`` for the others."""
    return ARTIFACTS / f"seed-{seed}" if int(seed) else ARTIFACTS


def base(seed: int = 0) -> Path:
    """The shared phase-1 base model, fine-tuned per lambda and quantizer."""
    return run_root(seed) / "models" / "pretrain" / "base.ckpt"


def eval_dir(seed: int = 0) -> Path:
    return run_root(seed) / "eval"


def seed_of(params: dict[str, Any], seed: str | int) -> int:
    """``seed`` as an int, if ``params.yaml``'s ``seeds`` lists it (default ``[0]``)."""
    return int(choose(str(seed), [str(s) for s in params.get("seeds", [0])], "seed"))


def with_seed(section: dict[str, Any], seed: int) -> dict[str, Any]:
    """A config section of ``params.yaml`` with the run's seed (``seeds`` is the one place for seeds)."""
    return {**section, "seed": seed}


def load_params(path: Path = PARAMS) -> dict[str, Any]:
    """``params.yaml`` as a dict (the one place that knows the numbers)."""
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise LicError(f"{path}: no such params file") from None


def variants(quantizer: str, params: dict[str, Any]) -> tuple[str, ...]:
    """The model families of a quantizer: ``base`` (phase 1; none for a quantizer that codes another's
    models, RDOQ), then each retraining family of ``params.yaml``'s ``retrain`` section
    (:class:`lic.config.RetrainPlan`)."""
    base = ("base",) if trained_for(quantizer) == quantizer else ()
    return base + tuple(f.name for f in retrain_plan(params).families(quantizer))


def coded_variants(quantizer: str, params: dict[str, Any]) -> tuple[str, ...]:
    """The base model of ``quantizer`` coded with each other quantizer of ``evaluate.coding``, and
    with each pipeline quantizer that codes its models (``usq-base-as-rdoq``, the base of RDOQ's
    families) (``base-as-<coding>``, :func:`lic.config.coded_base`)."""
    if trained_for(quantizer) != quantizer:
        return ()  # its base is another's
    coding = EvaluateConfig(**params.get("evaluate", {})).coding
    coding += tuple(q for q in quantizers(params) if q != quantizer and trained_for(q) == quantizer and q not in coding)
    return tuple(coded_base(quantizer, c).partition("-")[2] for c in coding if c != quantizer)


def retrain_plan(params: dict[str, Any]) -> RetrainPlan:
    return RetrainPlan.split(params.get("retrain", {}))[0]


def family(quantizer: str, variant: str, seed: int = 0) -> Path:
    """``artifacts/models/<quantizer>-<variant>``: one checkpoint per lambda; variant ``base`` is phase 1."""
    return run_root(seed) / "models" / f"{quantizer}-{variant}"


def checkpoint(quantizer: str, variant: str, key: str, seed: int = 0) -> Path:
    return family(quantizer, variant, seed) / f"{key}.ckpt"


def latents(quantizer: str, key: str, seed: int = 0, family: str | None = None) -> Path:
    """The dataset of a base model, or the one a later round of ``family`` is retrained on."""
    return run_root(seed) / "latents" / f"{quantizer}-{family + '-' if family else ''}{key}.zarr"


def source(quantizer: str, family: Family, key: str, seed: int = 0) -> tuple[Path, Path]:
    """``(checkpoint, dataset)`` a family's run starts from: the base (of the quantizer it trains for,
    :func:`lic.config.trained_for`) and its dataset for round 1, else the previous round's checkpoint
    and this round's dataset (the first one for the control)."""
    if family.round == 1:
        return checkpoint(trained_for(quantizer), "base", key, seed), latents(quantizer, key, seed)
    data = latents(quantizer, key, seed, family.name) if family.new_latents else latents(quantizer, key, seed)
    return checkpoint(quantizer, family.previous().name, key, seed), data


def evaluation(name: str, seed: int = 0) -> Path:
    """Results JSON of one evaluated family (``usq-base``, ``jpeg``, ...); its CSV lies beside it."""
    return eval_dir(seed) / f"{name}.json"


def tcq_coding(params: dict[str, Any], quantizer: str) -> dict[str, Any]:
    """TCQ coding parameters (lambda_tcq, states, layout, weighting) for ``quantizer``."""
    return dict(params.get("tcq", {}).get("code", {})) if quantizer == "tcq" else {}


def choose(value: str, allowed: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``allowed``, else a one-line error naming the choices."""
    allowed = list(allowed)
    if value not in allowed:
        raise LicError(f"unknown {what} {value!r}; {PARAMS} and the pipeline define {', '.join(map(str, allowed))}")
    return value


def quantizers(params: dict[str, Any]) -> list[str]:
    """``params.yaml``'s ``quantizers``: what every loop of the pipeline runs, in ``dvc.yaml`` and in
    the Prefect flow alike (both read them here). A quantizer that codes another's models (RDOQ: USQ's)
    needs that one listed too: its base models and controls are that one's."""
    names = [str(q) for q in params.get("quantizers", TRAINING_QUANTIZERS)]
    for q in names:
        choose(q, QUANTIZER_NAMES, "quantizer")
    if not names or len(set(names)) < len(names):
        raise LicError(f"quantizers must list some of {', '.join(QUANTIZER_NAMES)} once each, got {names}")
    for q in names:
        if trained_for(q) not in names:
            raise LicError(f"quantizers: {q} codes {trained_for(q)}'s models and reuses its controls: "
                           f"list {trained_for(q)} too")
        if trained_for(q) != q and float((params.get("retrain") or {}).get("validation", 0)):
            raise LicError(f"quantizers: {q} reuses {trained_for(q)}'s controls, and with retrain.validation a "
                           f"control keeps the weights best on its own quantizer's held-out latents: leave {q} out")
    return names


def check_run(quantizer: str, key: str, seed: str) -> dict[str, Any]:
    """Check a run's quantizer, lambda key and seed against ``params.yaml``; returns the params."""
    p = load_params()
    choose(quantizer, quantizers(p), "quantizer")
    choose(key, p["lmbdas"], "lambda key")
    seed_of(p, seed)
    return p


def log_progress(label: str) -> Callable[[int, dict[str, float]], None]:
    """A ``on_log(step, metrics)`` callback that writes to the Prefect run logger."""
    logger = get_run_logger()

    def on_log(step: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "step")
        logger.info("%s step %d: %s", label, step, shown)

    return on_log


def main(flow: Callable[..., Any], check: Callable[..., None] | None = None) -> None:
    """Run ``flow`` with positional command-line arguments (strings), one line on errors.

    ``check(*args)`` validates the arguments against ``params.yaml`` before Prefect starts.
    """
    params = inspect.signature(flow.fn).parameters.values()
    required = sum(p.default is inspect.Parameter.empty for p in params)
    args = sys.argv[1:]
    if not required <= len(args) <= len(params) or any(a in ("-h", "--help") for a in args):
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else flow.fn.__module__
        names = [p.name.upper() if p.default is inspect.Parameter.empty else f"[{p.name.upper()}]" for p in params]
        print(f"usage: python -m {' '.join([module, *names])}", file=sys.stderr)
        sys.exit(2)
    try:
        if check is not None:
            check(*args)
        flow(*args)
    except LicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
