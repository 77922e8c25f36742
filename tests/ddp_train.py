"""Run by ``torchrun`` in tests/test_distributed.py: a few training steps on one fixed patch, with
every step's loss written to ``OUT.rank<R>.json`` (the loss trajectory of each rank)."""

import json
import sys
from pathlib import Path

from lic.config import ModelConfig, TrainConfig
from lic.train import train

images, out, batch, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
losses: dict[int, float] = {}
cfg = TrainConfig(lmbda=0.013, steps=steps, batch_size=batch, patch_size=64, checkpoint_every=2, lr=1e-3, seed=seed)
train(ModelConfig(N=16, M=16), cfg, images, out, resume=True, progress=False, log_every=1,
      on_log=lambda step, m: losses.__setitem__(step, m["loss"]))
rank = __import__("os").environ.get("RANK", "0")
Path(f"{out}.rank{rank}.json").write_text(json.dumps(losses))
