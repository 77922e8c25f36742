"""Phase 1 flow: pretrain one model (one lambda, one quantizer).

Key ``base`` trains the base model at ``pretrain.base.lmbda`` from scratch; a lambda key
fine-tunes that base for ``pretrain.finetune.steps`` at its own lambda (one long run, then short
ones: the standard saving, and RD curves that rise monotonically).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import checkpoint, load_params, log_progress, main
from lic.config import ModelConfig, TrainConfig
from lic.train import train


@task(retries=1)  # a killed worker resumes from the last checkpoint on retry
def train_model(model_cfg: ModelConfig, cfg: TrainConfig, images: str, out: str, init: str | None) -> str:
    train(model_cfg, cfg, Path(images), Path(out), resume=True, on_log=log_progress(Path(out).stem), progress=False,
          init=Path(init) if init else None)
    return out


@flow(name="pretrain")
def pretrain(quantizer: str, key: str) -> str:
    p = load_params()
    qparams = dict(p.get("tcq", {}).get("train", {})) if quantizer == "tcq" else {}
    model_cfg = ModelConfig(N=p["model"]["N"], M=p["model"]["M"], quantizer=quantizer, quantizer_params=qparams)
    recipe, base = p["pretrain"]["recipe"], checkpoint(quantizer, "pretrain", "base")
    if key == "base":
        cfg = TrainConfig(**{**recipe, **p["pretrain"]["base"]})
        return train_model(model_cfg, cfg, p["data"]["train_images"], str(base), None)
    cfg = TrainConfig(**{**recipe, **p["pretrain"]["finetune"], "lmbda": float(p["lmbdas"][key])})
    return train_model(model_cfg, cfg, p["data"]["train_images"], str(checkpoint(quantizer, "base", key)), str(base))


if __name__ == "__main__":
    main(pretrain)
