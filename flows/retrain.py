"""Phases 3 and 4 flow: retrain the decoder, the hyper-decoder and decoder, or the control."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import checkpoint, choose, latents, load_params, log_progress, main
from lic.config import RetrainConfig, retrain_modes
from lic.quantizers import QUANTIZERS
from lic.retrain import retrain as run


@task
def retrain_model(cfg: RetrainConfig, base: str, dataset: str, out: str) -> str:
    run(cfg, Path(base), Path(dataset), Path(out), on_log=log_progress(f"{cfg.mode} {Path(out).stem}"),
        progress=False)
    return out


def check(mode: str, quantizer: str, key: str) -> None:
    choose(quantizer, QUANTIZERS, "quantizer")
    choose(mode, retrain_modes(quantizer), f"retraining mode for {quantizer}")
    choose(key, load_params()["lmbdas"], "lambda key")


@flow(name="retrain")
def retrain(mode: str, quantizer: str, key: str) -> str:
    p = load_params()
    cfg = RetrainConfig(mode=mode, **p["retrain"])
    return retrain_model(cfg, str(checkpoint(quantizer, "base", key)), str(latents(quantizer, key)),
                         str(checkpoint(quantizer, mode, key)))


if __name__ == "__main__":
    main(retrain, check)
