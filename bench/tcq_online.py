"""Phase 4 on a TCQ dataset: retraining steps per second, ``online`` (Viterbi per batch) against
``stale`` (the dataset's indices), measured side by side in one run.

Both strategies run ``lic.retrain.retrain`` for the same steps on the same dataset, alternating
(stale, online, stale, online, ...) so that drift in the machine's speed hits both alike; the
clock runs from the end of the warm-up steps to the last step (loading and saving excluded). The
default 100 measured steps hold one refresh of the decoder weighting (``weighting_every``, 100),
as many as a long run has per step.
The issue's target: ``online`` costs at most 2x ``stale`` at N=64, M=96, 128x128 patches,
batch 16.

    python bench/tcq_online.py [--model CKPT] [--steps 100] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lic.checkpoint import save_checkpoint
from lic.config import LatentsConfig, ModelConfig, RetrainConfig
from lic.data import default_images
from lic.latents import make_latents
from lic.models import Hyperprior
from lic.retrain import retrain

WARMUP = 5


def steps_per_second(strategy: str, ckpt: Path, data: Path, out: Path, steps: int, device: str) -> float:
    marks: dict[int, float] = {}
    cfg = RetrainConfig("hyper-decoder", steps=WARMUP + steps, batch_size=16, lmbda=0.0483, strategy=strategy,
                        device=device)
    retrain(cfg, ckpt, data, out, on_log=lambda step, _: marks.setdefault(step, time.perf_counter()), log_every=1,
            progress=False)
    return steps / (marks[WARMUP + steps] - marks[WARMUP])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="TCQ checkpoint (default: an untrained N=64, M=96 TCQ model)")
    ap.add_argument("--patches", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.model or Path(tmp) / "model.ckpt"
        if not args.model:
            torch.manual_seed(0)
            net = Hyperprior(ModelConfig(N=64, M=96, quantizer="tcq"))
            net.update(force=True)
            save_checkpoint(ckpt, net)
        data = make_latents(ckpt, Path(tmp) / "tcq.zarr", default_images("train"), "tcq",
                            cfg=LatentsConfig(patches=args.patches, patch_size=128, chunk=16, device=args.device),
                            progress=False)
        rates: dict[str, list[float]] = {"stale": [], "online": []}
        for _ in range(args.repeats):
            for strategy in rates:
                rates[strategy].append(steps_per_second(strategy, ckpt, data, Path(tmp) / "out.ckpt", args.steps,
                                                        args.device))
    print(f"phase 4 on TCQ latents, 128x128 patches, batch 16, {args.steps} steps x {args.repeats}, {args.device}, "
          f"{torch.get_num_threads()} threads")
    for strategy, r in rates.items():
        print(f"  {strategy:6s}: {statistics.median(r):6.2f} steps/s (runs: {', '.join(f'{v:.2f}' for v in r)})")
    ratio = statistics.median(rates["stale"]) / statistics.median(rates["online"])
    print(f"  online costs {ratio:.2f}x stale per step (target: at most 2x)")


if __name__ == "__main__":
    main()
