"""Phases 3 and 4 flow: retrain the decoder, the hyper-decoder and decoder, or the control."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import checkpoint, latents, load_params, log_progress, main
from lic.retrain import RetrainConfig
from lic.retrain import retrain as run


@task
def retrain_model(cfg: RetrainConfig, base: str, dataset: str, out: str) -> str:
    run(cfg, Path(base), Path(dataset), Path(out), on_log=log_progress(f"{cfg.mode} {Path(out).stem}"),
        progress=False)
    return out


@flow(name="retrain")
def retrain(mode: str, quantizer: str, key: str) -> str:
    p = load_params()
    cfg = RetrainConfig(mode=mode, **p["retrain"])
    return retrain_model(cfg, str(checkpoint(quantizer, "base", key)), str(latents(quantizer, key)),
                         str(checkpoint(quantizer, mode, key)))


if __name__ == "__main__":
    main(retrain)
