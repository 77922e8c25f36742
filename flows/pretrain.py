"""Phase 1 flow: pretrain one model (one lambda, one quantizer)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import checkpoint, load_params, log_progress, main
from lic.config import ModelConfig, TrainConfig
from lic.train import train


@task(retries=1)  # a killed worker resumes from the last checkpoint on retry
def train_model(model_cfg: ModelConfig, cfg: TrainConfig, images: str, out: str) -> str:
    train(model_cfg, cfg, Path(images), Path(out), resume=True, on_log=log_progress(Path(out).stem), progress=False)
    return out


@flow(name="pretrain")
def pretrain(quantizer: str, key: str) -> str:
    p = load_params()
    qparams = dict(p.get("tcq", {}).get("train", {})) if quantizer == "tcq" else {}
    model_cfg = ModelConfig(N=p["model"]["N"], M=p["model"]["M"], quantizer=quantizer, quantizer_params=qparams)
    cfg = TrainConfig(lmbda=float(p["lmbdas"][key]), **p["pretrain"])
    return train_model(model_cfg, cfg, p["data"]["train_images"], str(checkpoint(quantizer, "base", key)))


if __name__ == "__main__":
    main(pretrain)
