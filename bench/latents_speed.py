"""Latent datasets, measured side by side in one run:

- generation throughput (patches/s) with USQ and with TCQ;
- size on disk per sample, compressed (zstd) against raw;
- batches/s the loader delivers against batches/s phase-3 training consumes (needs >= 5x).

    python bench/latents_speed.py [--model CKPT] [--patches 256] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import zarr

from common import checkpoint_path
from lic.checkpoint import load_checkpoint
from lic.config import LatentsConfig
from lic.data import default_images
from lic.latents import ARRAYS, LatentDataset, make_latents


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="checkpoint (default: an untrained N=64, M=96 model)")
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--patch-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    images = default_images("train")
    with tempfile.TemporaryDirectory() as tmp:
        model = checkpoint_path(args.model, Path(tmp))
        paths = {}
        for q in ("usq", "tcq"):
            paths[q] = Path(tmp) / f"{q}.zarr"
            t0 = time.perf_counter()
            make_latents(model, paths[q], images, q, cfg=LatentsConfig(patches=args.patches,
                                                                             patch_size=args.patch_size), progress=False)
            dt = time.perf_counter() - t0
            print(f"generation {q}: {args.patches / dt:.1f} patches/s ({dt:.1f} s for {args.patches})")
        group = zarr.open_group(paths["usq"], mode="r")
        raw = sum(group[k].nbytes for k in ARRAYS)
        disk = dir_size(paths["usq"])
        print(f"size per sample (usq): {disk / args.patches / 1024:.1f} KiB on disk, "
              f"{raw / args.patches / 1024:.1f} KiB raw, ratio {disk / raw:.3f}")

        data = LatentDataset(paths["usq"])
        gen = torch.Generator().manual_seed(0)
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            data.batch(torch.randint(len(data), (args.batch_size,), generator=gen))
        load_rate = n / (time.perf_counter() - t0)

        net, _ = load_checkpoint(model)
        opt = torch.optim.Adam(net.g_s.parameters(), lr=1e-4)
        batches = [data.batch(torch.randint(len(data), (args.batch_size,), generator=gen))
                   for _ in range(args.steps)]
        t0 = time.perf_counter()
        for y_hat, x in batches:
            opt.zero_grad()
            loss = torch.mean((net.g_s(y_hat) - x) ** 2)
            loss.backward()
            opt.step()
        train_rate = args.steps / (time.perf_counter() - t0)
        print(f"loader: {load_rate:.1f} batches/s, phase-3 training: {train_rate:.2f} batches/s, "
              f"ratio {load_rate / train_rate:.1f}x (batch {args.batch_size}, {args.patch_size}px)")


if __name__ == "__main__":
    main()
