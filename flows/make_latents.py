"""Phase 2 flow: a dataset of truly quantized latents for one pretrained model.

``latents.shards`` splits the generation into shards of whole chunks, submitted to the task runner
``params.yaml`` names (``runner``; a Dask cluster among them): each worker writes its shard into the
one Zarr group, and the last to finish marks it complete. With ``latents.device: cuda`` each shard
claims a GPU (see :mod:`flows.runners`). With a ``family`` of a later round, the
dataset is made from the previous round's model, as that family's next round is retrained on.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import dataset_card
from flows.common import (check_run, choose, image_folder, load_params, main, publish, retrain_plan, seed_of, source,
                          stage_inputs, tcq_coding, with_seed, work_path)
from flows.runners import RunnerConfig, pin, with_runner
from lic import trellis
from lic.checkpoint import read_checkpoint
from lic.config import Family, LatentsConfig
from lic.data import folder_fingerprint, list_images
from lic.latents import make_latents as make


@task(retries=1, cache_policy=NO_CACHE)  # a shard resumes chunk by chunk
def quantize_shard(ckpt: str, out: str, images: str, quantizer: str, qparams: dict, cfg: LatentsConfig,
                   parent: str | None, shard: tuple[int, int], threads: int, devices: tuple[str, ...] = ()) -> str:
    torch.set_num_threads(threads)
    trellis.threads(threads)  # the TCQ search shares the cores as torch does
    pin(devices)
    make(Path(ckpt), Path(out), Path(images), quantizer, qparams, cfg, resume=True, progress=False, shard=shard,
         parent=Path(parent) if parent else None)
    return out


def check(quantizer: str, key: str, seed: str = "0", family: str = "") -> None:
    p = check_run(quantizer, key, seed)
    if family:
        later = [f.name for f in retrain_plan(p).families(quantizer) if f.new_latents]
        choose(family, later, f"later-round family for {quantizer}")


@flow(name="make_latents")
def make_latents(quantizer: str, key: str, seed: str = "0", family: str = "") -> str:
    p = load_params()
    s = seed_of(p, seed)
    cfg = LatentsConfig(**with_seed(p["latents"], s))
    fam = Family.parse(family) if family else Family("decoder")
    ckpt, out = source(quantizer, fam, key, s)  # a later round's: the previous round's model, a new dataset
    parent = source(quantizer, fam.previous(), key, s)[1] if family else None
    folder, qparams = image_folder(p["data"]["train_images"]), tcq_coding(p, quantizer)
    # the shards fill one work group, keyed by the inputs (a killed stage continues it), published when complete
    work = work_path(out, stage_inputs("flows.make_latents", checkpoint=read_checkpoint(ckpt)["fingerprint"],
                                       quantizer=quantizer, qparams=qparams, latents=asdict(cfg) | {"shards": 1},
                                       images=folder_fingerprint(list_images(folder)), parent=parent))
    args = (str(ckpt), str(work), str(folder), quantizer, qparams, cfg, str(parent) if parent else None)
    runner = RunnerConfig.from_params(p)
    gpu = cfg.device.startswith("cuda")
    with runner.claim(gpu):
        shards = [quantize_shard.submit(*args, (i, cfg.shards), runner.torch_threads, runner.devices() if gpu else ())
                  for i in range(cfg.shards)]
    [f.result() for f in shards]  # a failed shard fails the flow
    publish(work, out)
    dataset_card(out, parent)
    return str(out)


if __name__ == "__main__":
    main(with_runner(make_latents), check)
