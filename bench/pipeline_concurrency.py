"""The pipeline flow with its steps one at a time against ``--workers`` at once, side by side.

Runs ``python -m flows.pipeline`` twice on a small profile (two lambdas, USQ and TCQ, every phase;
the bundled photos cut to 256x256) in two fresh folders, with ``runner: {kind: processes,
workers: 1}`` and then ``workers: N``, reporting to one Prefect server, and prints both wall times
and their ratio.

    python -m flows.server python bench/pipeline_concurrency.py [--workers 2] [--kind processes|dask]

(`flows.server` starts one Prefect server for both runs, so neither pays for starting its own.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from lic.data import default_images, list_images

ROOT = Path(__file__).resolve().parents[1]
# the demo profile (params.yaml), smaller: two lambdas, shorter runs, 64x64 patches
OVERRIDES = {
    "profile": "bench",
    "data": {"train_images": "photos/train", "test_images": "photos/test"},
    "model": {"N": 32, "M": 48},
    "lmbdas": {"q1": 0.0018, "q4": 0.013},
    "seeds": [0],
    "latents": {"patches": 64, "patch_size": 64, "chunk": 16},
    "retrain": {"steps": 60, "batch_size": 4, "lr": 0.0001},
    "evaluate": {"codecs": ["jpeg"], "qualities": [10, 30, 50, 70, 90]},
}
STEPS = {"base": 100, "finetune": 60}


def small_project(folder: Path, runner: dict) -> None:
    """``folder`` with the small profile's ``params.yaml`` and its photos."""
    folder.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text()) | OVERRIDES | {"runner": runner}
    params["pretrain"]["recipe"] |= {"batch_size": 4, "patch_size": 64}
    for phase, steps in STEPS.items():
        params["pretrain"][phase]["steps"] = steps
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    for split in ("train", "test"):
        (folder / "photos" / split).mkdir(parents=True)
        for f in list_images(default_images(split)):
            Image.fromarray(np.asarray(Image.open(f).convert("RGB"))[:256, :256]).save(folder / "photos" / split / f.name)


def run(folder: Path, runner: dict) -> float:
    small_project(folder, runner)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flows.pipeline"], cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{runner}: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kind", default="processes", choices=["processes", "dask"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(Path(tmp) / "one", {"kind": args.kind, "workers": 1})
        many = run(Path(tmp) / "many", {"kind": args.kind, "workers": args.workers})
    print(f"pipeline flow, {args.kind} runner, small profile (2 lambdas, USQ and TCQ, every phase)")
    print(f"  1 worker:  {one:6.1f} s")
    print(f"  {args.workers} workers: {many:6.1f} s")
    print(f"  concurrent / sequential speed-up: {one / many:.2f}x")


if __name__ == "__main__":
    main()
