"""Phases 3 and 4 flow: retrain one family's model at one lambda (:class:`lic.config.Family`: the
decoder, the hyper-decoder and decoder with online or stale indices, or the control; round ``r > 1``
continues round ``r - 1``'s model)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import progress
from flows.common import (check_run, checkpoint, choose, load_params, main, publish, retrain_plan, seed_of, source,
                          stage_inputs, with_seed, work_path)
from lic.checkpoint import read_checkpoint
from lic.config import Family, RetrainConfig, RetrainPlan
from lic.latents import open_latents
from lic.retrain import retrain as run


@task(retries=1, cache_policy=NO_CACHE)  # a killed worker resumes from the last state on retry
def retrain_model(cfg: RetrainConfig, base: str, dataset: str, out: str, quantizer: str) -> str:
    """Retrain into a work file keyed by the run's inputs (a killed stage continues it), then publish it."""
    attrs = dict(open_latents(Path(dataset)).attrs)
    work = work_path(Path(out), stage_inputs("flows.retrain", (quantizer,), retrain=asdict(cfg), dataset=attrs,
                                             checkpoint=read_checkpoint(Path(base))["fingerprint"]))
    run(cfg, Path(base), Path(dataset), work, on_log=progress("retrain", Path(out), cfg.steps), progress=False,
        resume=True)
    publish(work, Path(out))
    return out


def check(family: str, quantizer: str, key: str, seed: str = "0") -> None:
    p = check_run(quantizer, key, seed)
    choose(family, [f.name for f in retrain_plan(p).families(quantizer)], f"retraining family for {quantizer}")


@flow(name="retrain")
def retrain(family: str, quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    fam = Family.parse(family)
    cfg = RetrainConfig(mode=fam.mode, strategy=fam.strategy, **with_seed(RetrainPlan.split(p["retrain"])[1], s))
    base, dataset = source(quantizer, fam, key, s)
    return retrain_model(cfg, str(base), str(dataset), str(checkpoint(quantizer, family, key, s)), quantizer)


if __name__ == "__main__":
    main(retrain, check)
