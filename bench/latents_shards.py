"""Sharded latent generation on a Dask ``LocalCluster``: 2 single-threaded workers against 1.

Both runs write the same dataset (``--shards`` shards of whole chunks, one Dask task each) into a
fresh Zarr group; the 1-worker run takes the shards one after another. Prints both wall times and
their ratio (the scaling), and checks that the two groups hold equal arrays. The Prefect flow
(``flows/make_latents.py`` with ``runner.kind: dask``) submits the same shard calls through
``prefect_dask.DaskTaskRunner``.

    python bench/latents_shards.py [--model CKPT] [--quantizer tcq] [--patches 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

from common import checkpoint_path
from lic.config import LatentsConfig
from lic.data import default_images
from lic.latents import ARRAYS, make_latents, open_latents


def shard(ckpt: str, out: str, images: str, quantizer: str, cfg: LatentsConfig, i: int, n: int) -> int:
    import torch

    torch.set_num_threads(1)
    make_latents(Path(ckpt), Path(out), Path(images), quantizer, None, cfg, resume=True, progress=False, shard=(i, n))
    return i


def run(workers: int, ckpt: Path, out: Path, quantizer: str, cfg: LatentsConfig, shards: int) -> float:
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(sum, [1]).result()  # workers are up before the clock starts
        t0 = time.perf_counter()
        futures = [client.submit(shard, str(ckpt), str(out), str(default_images("train")), quantizer, cfg, i, shards,
                                 pure=False) for i in range(shards)]
        client.gather(futures)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="checkpoint (default: an untrained N=64, M=96 model)")
    ap.add_argument("--quantizer", default="tcq", choices=["usq", "tcq"])
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--shards", type=int, default=2)
    args = ap.parse_args()
    cfg = LatentsConfig(patches=args.patches, patch_size=128, chunk=16)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint_path(args.model, Path(tmp))
        times = {w: run(w, ckpt, Path(tmp) / f"{w}.zarr", args.quantizer, cfg, args.shards) for w in (1, 2)}
        a, b = open_latents(Path(tmp) / "1.zarr"), open_latents(Path(tmp) / "2.zarr")
        equal = all(np.array_equal(a[k][:], b[k][:]) for k in ARRAYS)
    print(f"{args.patches} patches of 128x128, {args.quantizer}, {args.shards} shards, Dask LocalCluster")
    for w, t in times.items():
        print(f"  {w} worker{'s' if w > 1 else ''}: {t:6.1f} s  ({args.patches / t:5.1f} patches/s)")
    print(f"  scaling 2 workers / 1 worker: {times[1] / times[2]:.2f}x; groups equal: {equal}")


if __name__ == "__main__":
    main()
