"""Phase 2 flow: a dataset of truly quantized latents for one pretrained model.

``latents.shards`` splits the generation into shards of whole chunks, submitted to the task runner
``params.yaml`` names (``runner``; a Dask cluster among them): each worker writes its shard into the
one Zarr group, and the last to finish marks it complete.
"""

from __future__ import annotations

from pathlib import Path

import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.common import check_run, checkpoint, latents, load_params, main, seed_of, tcq_coding, with_seed
from flows.runners import RunnerConfig, with_runner
from lic.config import LatentsConfig
from lic.latents import make_latents as make
from lic.quantizers import QUANTIZERS


@task(retries=1, cache_policy=NO_CACHE)  # a shard resumes chunk by chunk
def quantize_shard(ckpt: str, out: str, images: str, quantizer: str, qparams: dict, cfg: LatentsConfig,
                   shard: tuple[int, int], threads: int) -> str:
    torch.set_num_threads(threads)
    make(Path(ckpt), Path(out), Path(images), quantizer, qparams, cfg, resume=True, progress=False, shard=shard)
    return out


def check(quantizer: str, key: str, seed: str = "0") -> None:
    check_run(quantizer, key, seed, QUANTIZERS)


@flow(name="make_latents")
def make_latents(quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    cfg = LatentsConfig(**with_seed(p["latents"], s))
    args = (str(checkpoint(quantizer, "base", key, s)), str(latents(quantizer, key, s)),
            p["data"]["train_images"], quantizer, tcq_coding(p, quantizer), cfg)
    threads = RunnerConfig.from_params(p).torch_threads
    shards = [quantize_shard.submit(*args, (i, cfg.shards), threads) for i in range(cfg.shards)]
    return [f.result() for f in shards][0]  # a failed shard fails the flow


if __name__ == "__main__":
    main(with_runner(make_latents), check)
