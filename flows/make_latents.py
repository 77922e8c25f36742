"""Phase 2 flow: a dataset of truly quantized latents for one pretrained model.

``latents.shards`` splits the generation into shards of whole chunks, submitted to the task runner
``params.yaml`` names (``runner``; a Dask cluster among them): each worker writes its shard into the
one Zarr group, and the last to finish marks it complete. With ``latents.device: cuda`` each shard
claims a GPU (see :mod:`flows.runners`). With a ``family`` of a later round, the
dataset is made from the previous round's model, as that family's next round is retrained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.artifacts import key
from flows.common import (check_run, choose, image_folder, load_params, main, publish, retrain_plan, seed_of, source,
                          stage_inputs, tcq_coding, with_seed, work_path)
from flows.runners import RunnerConfig, pin, with_runner
from lic.checkpoint import read_checkpoint
from lic.config import Family, LatentsConfig
from lic.data import folder_fingerprint, list_images
from lic.datasets import describe, diff
from lic.latents import make_latents as make
from lic.quantizers import quantizer_class


def dataset_card(path: Path, parent: Path | None = None) -> None:
    """A latent dataset's provenance (checkpoint fingerprint, quantizer, lineage and round) and index
    statistics, with ``lic latents diff`` against its parent round's dataset when it has one."""
    d = describe(path)
    prov, stats = d["provenance"], d["indices"]
    lineage = prov.get("lineage") or {}
    lines = [f"# Latent dataset `{path}`", "",
             f"- checkpoint fingerprint: `{str(lineage.get('checkpoint_fingerprint'))[:16]}`",
             f"- encoder fingerprint: `{prov['encoder_fingerprint'][:16]}`",
             f"- quantizer: {prov['quantizer']} {json.dumps(prov['quantizer_params'])}",
             f"- round {lineage.get('round', 1)}" + (f", parent `{lineage['parent']['path']}`"
                                                      if lineage.get("parent") else ""),
             f"- {prov['patches']} patches of {prov['patch_size']}x{prov['patch_size']}, seed {prov['seed']}", "",
             "| elements | zero fraction | mean model rate (bits/element) |", "|---|---|---|",
             f"| {stats['elements']:,} | {stats['zero_fraction']:.4f} | {stats['mean_bits_per_element']:.4f} |"]
    if parent is not None:
        moved = diff(parent, path)
        lines += ["", f"## Against its parent round `{parent}`", "",
                  f"- indices differing: {json.dumps(moved['indices_differing'])}",
                  f"- provenance changed: {', '.join(sorted(moved['provenance_changed'])) or 'nothing'}"]
    create_markdown_artifact("\n".join(lines), key=key("latents", path), description=f"provenance of {path}")


@task(retries=1, cache_policy=NO_CACHE)  # a shard resumes chunk by chunk
def quantize_shard(ckpt: str, out: str, images: str, quantizer: str, qparams: dict, cfg: LatentsConfig,
                   parent: str | None, shard: tuple[int, int], threads: int, devices: tuple[str, ...] = ()) -> str:
    torch.set_num_threads(threads)
    quantizer_class(quantizer).threads(threads)  # TCQ's search shares the cores as torch does
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
    work = work_path(out, stage_inputs("flows.make_latents", (quantizer,), checkpoint=read_checkpoint(ckpt)["fingerprint"],
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
