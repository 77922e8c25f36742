"""Phase 1 flow: pretrain one model (one lambda, one quantizer).

Key ``base`` trains the shared base model at ``pretrain.base.lmbda`` from scratch, with USQ's
uniform noise. A lambda key fine-tunes that base for ``pretrain.finetune.steps`` at its own lambda
with its quantizer's perturbation (USQ noise, or TCQ's ``tcq.train`` perturbation). One long run,
then short ones: the standard saving, RD curves that rise monotonically, and USQ and TCQ models
that share their start and their training budget.

With ``distributed.nproc_per_node`` above 1, the task launches ``torchrun`` with that many
data-parallel processes (``lic train``, see lic/distributed.py) and waits for it.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import progress
from flows.common import (base, check_run, checkpoint, image_folder, load_params, main, model_section, publish,
                          seed_of, stage_inputs, with_seed, work_path)
from lic.checkpoint import read_checkpoint
from lic.config import ModelConfig, TrainConfig, dump_training, trained_for
from lic.data import folder_fingerprint, list_images
from lic.errors import LicError
from lic.train import train


@task(retries=1, cache_policy=NO_CACHE)  # a killed worker resumes from the last checkpoint on retry
def train_model(model_cfg: ModelConfig, cfg: TrainConfig, images: str, out: str, init: str | None,
                nproc: int = 1) -> str:
    """Train into a work file keyed by the run's inputs (a killed stage continues it), then publish it."""
    inputs = stage_inputs("flows.pretrain", (model_cfg.quantizer,), model=model_cfg.to_dict(), train=asdict(cfg),
                          nproc=nproc, images=folder_fingerprint(list_images(Path(images))),
                          init=read_checkpoint(Path(init))["fingerprint"] if init else None)
    work = work_path(Path(out), inputs)
    if work.exists():
        get_run_logger().info("%s: continuing %s", out, work)
    if nproc > 1:
        torchrun(model_cfg, cfg, images, str(work), init, nproc)
    else:
        train(model_cfg, cfg, Path(images), work, resume=True, on_log=progress("train", Path(out), cfg.steps),
              progress=False, init=Path(init) if init else None)
    publish(work, Path(out))
    return out


def torchrun(model_cfg: ModelConfig, cfg: TrainConfig, images: str, out: str, init: str | None, nproc: int) -> None:
    """``torchrun --standalone --nproc-per-node NPROC -m lic train --config JSON ...``: the whole typed
    configuration in one serialization (:func:`lic.config.dump_training`)."""
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "lic",
            "train", "--config", dump_training(model_cfg, cfg), "--images", images, "-o", out, "--resume",
            *(["--init", init] if init else [])]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise LicError(f"torchrun training of {out} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    get_run_logger().info(proc.stdout.strip())


def check(quantizer: str, key: str, seed: str = "0") -> None:
    """``usq base`` (the shared base model), or a quantizer and a lambda key of ``params.yaml``; a seed
    of its ``seeds``."""
    p = load_params()
    ModelConfig.from_params(model_section(p), "usq", {})  # model.kind, N, M and slices, in one line if wrong
    if "zoo" in p and (quantizer != "tcq" or key == "base"):
        raise LicError("the zoo profile imports its USQ bases (python -m flows.zoo KEY); only tcq KEY trains here")
    if key != "base":
        check_run(quantizer, key, seed)
        if trained_for(quantizer) != quantizer:
            raise LicError(f"{quantizer} trains with {trained_for(quantizer)}'s surrogate: its models are "
                           f"{trained_for(quantizer)}'s (python -m flows.pretrain {trained_for(quantizer)} {key})")
    elif quantizer != "usq":
        raise LicError("the shared base model is trained with USQ noise: python -m flows.pretrain usq base")
    else:
        seed_of(p, seed)


@flow(name="pretrain")
def pretrain(quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    qparams = dict(p.get("tcq", {}).get("train", {})) if quantizer == "tcq" else {}
    model_cfg = ModelConfig.from_params(model_section(p), quantizer, qparams)
    recipe = with_seed(p["pretrain"]["recipe"], s)
    nproc = int((p.get("distributed") or {}).get("nproc_per_node", 1))
    folder = image_folder(p["data"]["train_images"])
    if key == "base":
        cfg = TrainConfig(**{**recipe, **p["pretrain"]["base"]})
        return train_model(model_cfg, cfg, str(folder), str(base(s)), None, nproc)
    cfg = TrainConfig(**{**recipe, **p["pretrain"]["finetune"], "lmbda": float(p["lmbdas"][key])})
    init = checkpoint("usq", "base", key) if "zoo" in p else base(s)  # the zoo profile fine-tunes each imported base
    if "zoo" in p:  # its model is the imported base's (per quality)
        base_cfg = ModelConfig.from_dict(read_checkpoint(init)["config"])
        model_cfg = ModelConfig(**{**base_cfg.__dict__, "quantizer": quantizer, "quantizer_params": qparams})
    out = checkpoint(quantizer, "base", key, s)
    return train_model(model_cfg, cfg, str(folder), str(out), str(init), nproc)


if __name__ == "__main__":
    main(pretrain, check)
