"""Phase 1 flow: pretrain one model (one lambda, one quantizer).

Key ``base`` trains the shared base model at ``pretrain.base.lmbda`` from scratch, with USQ's
uniform noise. A lambda key fine-tunes that base for ``pretrain.finetune.steps`` at its own lambda
with its quantizer's perturbation (USQ noise, or TCQ's ``tcq.train`` perturbation). One long run,
then short ones: the standard saving, RD curves that rise monotonically, and USQ and TCQ models
that share their start and their training budget.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import base, check_run, checkpoint, load_params, log_progress, main, seed_of, with_seed
from lic.config import ModelConfig, TrainConfig
from lic.errors import LicError
from lic.quantizers import QUANTIZERS
from lic.train import train


@task(retries=1)  # a killed worker resumes from the last checkpoint on retry
def train_model(model_cfg: ModelConfig, cfg: TrainConfig, images: str, out: str, init: str | None) -> str:
    train(model_cfg, cfg, Path(images), Path(out), resume=True, on_log=log_progress(Path(out).stem), progress=False,
          init=Path(init) if init else None)
    return out


def check(quantizer: str, key: str, seed: str = "0") -> None:
    """``usq base`` (the shared base model), or a quantizer and a lambda key of ``params.yaml``; a seed
    of its ``seeds``."""
    p = load_params()
    if "zoo" in p and (quantizer != "tcq" or key == "base"):
        raise LicError("the zoo profile imports its USQ bases (python -m flows.zoo KEY); only tcq KEY trains here")
    if key != "base":
        check_run(quantizer, key, seed, QUANTIZERS)
    elif quantizer != "usq":
        raise LicError("the shared base model is trained with USQ noise: python -m flows.pretrain usq base")
    else:
        seed_of(p, seed)


@flow(name="pretrain")
def pretrain(quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    qparams = dict(p.get("tcq", {}).get("train", {})) if quantizer == "tcq" else {}
    model_cfg = ModelConfig(N=p["model"]["N"], M=p["model"]["M"], quantizer=quantizer, quantizer_params=qparams)
    recipe = with_seed(p["pretrain"]["recipe"], s)
    if key == "base":
        cfg = TrainConfig(**{**recipe, **p["pretrain"]["base"]})
        return train_model(model_cfg, cfg, p["data"]["train_images"], str(base(s)), None)
    cfg = TrainConfig(**{**recipe, **p["pretrain"]["finetune"], "lmbda": float(p["lmbdas"][key])})
    init = checkpoint("usq", "base", key) if "zoo" in p else base(s)  # the zoo profile fine-tunes each imported base
    out = checkpoint(quantizer, "base", key, s)
    return train_model(model_cfg, cfg, p["data"]["train_images"], str(out), str(init))


if __name__ == "__main__":
    main(pretrain, check)
