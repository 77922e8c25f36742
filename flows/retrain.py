"""Phases 3 and 4 flow: retrain the decoder, the hyper-decoder and decoder, or the control."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.common import (check_run, checkpoint, choose, latents, load_params, log_progress, main, seed_of,
                          with_seed)
from lic.config import RetrainConfig, retrain_modes
from lic.quantizers import QUANTIZERS
from lic.retrain import retrain as run


@task(cache_policy=NO_CACHE)  # writes an artifact: never skipped by input caching
def retrain_model(cfg: RetrainConfig, base: str, dataset: str, out: str) -> str:
    run(cfg, Path(base), Path(dataset), Path(out), on_log=log_progress(f"{cfg.mode} {Path(out).stem}"),
        progress=False)
    return out


def check(mode: str, quantizer: str, key: str, seed: str = "0") -> None:
    check_run(quantizer, key, seed, QUANTIZERS)
    choose(mode, retrain_modes(quantizer), f"retraining mode for {quantizer}")


@flow(name="retrain")
def retrain(mode: str, quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    cfg = RetrainConfig(mode=mode, **with_seed(p["retrain"], s))
    return retrain_model(cfg, str(checkpoint(quantizer, "base", key, s)), str(latents(quantizer, key, s)),
                         str(checkpoint(quantizer, mode, key, s)))


if __name__ == "__main__":
    main(retrain, check)
