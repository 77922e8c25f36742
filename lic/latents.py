"""Phase 2: offline datasets of truly quantized latents, stored as Zarr v3 groups.

One group per (checkpoint, quantizer). The encoder and hyper networks are frozen; each training
patch is run through them and quantized with the real quantizer (USQ rounding or TCQ's Viterbi).
Arrays are chunked along the sample axis and zstd-compressed:

    x        uint8    N x 3 x P x P        the patches
    y        float32  N x M x P/16 x P/16  unquantized latents (phase 4 re-quantizes them)
    y_hat    float32  N x M x P/16 x P/16  dequantized latents
    indices  int32    N x M x P/16 x P/16
    means    float32, scales float32       N x M x P/16 x P/16
    z_hat    float32  N x N' x P/64 x P/64 quantized hyper-latent

The group's attributes hold the provenance (see :func:`provenance`), with the dataset's lineage: a
dataset made from a retrained model for another round names its ``parent`` dataset and is one
round later. Generation writes chunk by
chunk; chunk ``i`` depends only on ``(seed, i)``, so a killed run resumes where it stopped and
ends with the same arrays as an uninterrupted one. Shard ``i`` of ``n`` writes a contiguous range
of whole chunks, so ``n`` processes (or Dask workers) fill one group together; each marks its
chunks in the ``done`` array (one file per chunk, so writers never share a file), and whichever
finds every chunk done writes ``complete: true``. Readers refuse a group without it. The
``seconds`` array holds each chunk's generation time (its sum is the dataset's compute cost).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from tqdm import tqdm

from lic import __version__
from lic.checkpoint import DECODER_PREFIX, load_checkpoint, weights_fingerprint
from lic.config import GRANULARITY, LATENT_STRIDE, LatentsConfig
from lic.data import PatchSampler, folder_fingerprint, list_images
from lic.errors import LicError
from lic.machine import machine
from lic.models import Hyperprior
from lic.quantizers import Quantizer

ARRAYS = ("x", "y", "y_hat", "indices", "means", "scales", "z_hat")


def encoder_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the weights a latent dataset depends on: every parameter and buffer of the model but
    the decoder ``g_s``'s (``g_a``, ``h_a``, ``h_s``, the entropy models, and whatever context model
    decides the means and scales of the indices: channel slices, spatial context and entropy
    parameters), so that no hand-kept list can miss a part."""
    return weights_fingerprint(model.state_dict(), (DECODER_PREFIX,))


def lineage(checkpoint_fingerprint: str, parent: Path | None = None) -> dict[str, Any]:
    """A dataset's place in a chain of retraining rounds: ``round`` 1 without ``parent``, else the
    parent's round plus one, with the parent's path, round and checkpoint fingerprint."""
    if parent is None:
        return {"round": 1, "checkpoint_fingerprint": checkpoint_fingerprint, "parent": None}
    up = dict(open_latents(parent).attrs.get("lineage") or {"round": 1, "checkpoint_fingerprint": None})
    return {"round": up["round"] + 1, "checkpoint_fingerprint": checkpoint_fingerprint,
            "parent": {"path": str(parent), "round": up["round"], "checkpoint_fingerprint": up["checkpoint_fingerprint"]}}


def provenance(model: Hyperprior, q: Quantizer, images: Path, cfg: LatentsConfig,
               lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a dataset was made from; two datasets with equal provenance hold equal arrays."""
    return {
        "lineage": lineage,
        "encoder_fingerprint": encoder_fingerprint(model),
        "model_config": model.config.to_dict(),
        "quantizer": q.name,
        "quantizer_params": q.params(),
        "images_fingerprint": folder_fingerprint(list_images(images)),
        "patch_size": cfg.patch_size,
        "patches": cfg.patches,
        "seed": cfg.seed,
        "chunk": cfg.chunk,
    }


def shard_chunks(n_chunks: int, shard: tuple[int, int]) -> range:
    """The chunks shard ``i`` of ``n`` writes: ``[i*C//n, (i+1)*C//n)`` of ``C`` chunks."""
    i, n = shard
    if not 0 <= i < n:
        raise LicError(f"shard {i}/{n}: need 0 <= I < N")
    return range(i * n_chunks // n, (i + 1) * n_chunks // n)


def make_latents(checkpoint: Path, out: Path, images: Path, quantizer: str | None = None,
                 quantizer_params: dict[str, Any] | None = None, cfg: LatentsConfig = LatentsConfig(),
                 resume: bool = False, progress: bool = True, shard: tuple[int, int] = (0, 1),
                 parent: Path | None = None) -> Path:
    """Write (or, with ``resume``, complete) the latent dataset ``out`` (on ``cfg.device``).

    With ``shard=(i, n)``, only shard ``i``'s chunks; a shard joins the group another shard made.
    ``parent``: the dataset of the previous round, which ``checkpoint`` was retrained on.
    """
    model, obj = load_checkpoint(checkpoint, cfg.device)
    q = model.quantizer_for(quantizer, **(quantizer_params or {}))
    prov = provenance(model, q, images, cfg, lineage(obj["fingerprint"], parent))
    out = Path(out)
    if not out.exists():
        _create(out, model, prov, cfg)
    elif not resume and shard[1] == 1:
        raise LicError(f"{out} exists; pass --resume to complete it, or choose another output")
    group = zarr.open_group(out, mode="r+")
    old = {k: group.attrs.get(k) for k in prov}
    if _jsonable(old) != _jsonable(prov):
        diff = ", ".join(k for k in prov if _jsonable(old[k]) != _jsonable(prov[k]))
        raise LicError(f"cannot resume {out}: it was made with a different {diff}")
    if "done" not in group:  # made before sharded generation: complete, or start again
        if group.attrs.get("complete"):
            return out
        raise LicError(f"{out}: an interrupted dataset of an older lic; delete it and generate it again")
    done = group["done"]
    finished = done[:]
    todo = [i for i in shard_chunks(len(finished), shard) if not finished[i]]
    sampler = PatchSampler.from_folder(images, cfg.patch_size, cfg.chunk)
    name = q.name + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else "")

    @torch.inference_mode()
    def finish(i: int, x: torch.Tensor, a: dict[str, Any], front_s: float) -> None:
        """Quantize chunk ``i`` (the search, on the CPU for CPU latents) and write it."""
        t0 = time.perf_counter()
        lo = i * cfg.chunk
        for key, value in _arrays(model, q, x, a).items():
            group[key][lo : lo + len(x)] = value
        group["seconds"][i] = front_s + time.perf_counter() - t0
        done[i] = True  # after the chunk's data

    # the front half of chunk i + 1 runs while a worker quantizes and writes chunk i
    with ThreadPoolExecutor(1) as worker:
        pending = None
        for i in tqdm(todo, desc=f"latents {name}", disable=not progress, dynamic_ncols=True):
            t0 = time.perf_counter()
            lo, hi = i * cfg.chunk, min(cfg.patches, (i + 1) * cfg.chunk)
            x = sampler.sample(torch.Generator().manual_seed(cfg.seed * 1_000_003 + i))[: hi - lo].to(cfg.device)
            with torch.inference_mode():
                a = model.analyze(x)
            if pending is not None:
                pending.result()
            pending = worker.submit(finish, i, x, a, time.perf_counter() - t0)
        if pending is not None:
            pending.result()
    if bool(done[:].all()) and not group.attrs.get("complete"):
        group.attrs.update({"complete": True, "created": dt.datetime.now(dt.timezone.utc).isoformat()})
    return out


def _create(out: Path, model: Hyperprior, prov: dict[str, Any], cfg: LatentsConfig) -> None:
    """Make the empty group beside ``out`` and rename it into place: concurrent shards see either
    no group or a whole one; when another shard's rename came first, theirs is kept."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    group = zarr.open_group(tmp, mode="w")
    M, N, n, p, chunk = model.M, model.N, cfg.patches, cfg.patch_size, cfg.chunk
    lat, hyp = p // LATENT_STRIDE, p // GRANULARITY
    shapes = {"x": ((3, p, p), "uint8"), "z_hat": ((N, hyp, hyp), "float32"), "indices": ((M, lat, lat), "int32")}
    for key in ARRAYS:
        shape, dtype = shapes.get(key, ((M, lat, lat), "float32"))
        group.create_array(key, shape=(n, *shape), chunks=(chunk, *shape), dtype=dtype,
                           compressors=zarr.codecs.ZstdCodec(level=3))
    group.create_array("done", shape=(math.ceil(n / chunk),), chunks=(1,), dtype="bool", fill_value=False)
    group.create_array("seconds", shape=(math.ceil(n / chunk),), chunks=(1,), dtype="float64", fill_value=0.0)
    group.attrs.update({**prov, "code_version": __version__, "machine": machine(cfg.device), "complete": False})
    try:
        os.rename(tmp, out)
    except OSError:
        if not out.is_dir():
            raise
        shutil.rmtree(tmp)


def _arrays(model: Hyperprior, q: Quantizer, x: torch.Tensor, a: dict[str, Any]) -> dict[str, np.ndarray]:
    """A chunk's arrays from its patches ``x`` and the front half's ``a`` (:meth:`Hyperprior.analyze`)."""
    out = model.code_latents(a, q) | {k: a[k] for k in ("y", "z_hat")}  # a context model's own means, scales
    arrays = {k: v.detach().cpu().numpy() for k, v in out.items()}
    arrays["x"] = x.mul(255).round().to(torch.uint8).cpu().numpy()
    return arrays


def _jsonable(value: Any) -> Any:
    """Normalise for comparison with attributes read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def is_complete(path: Path) -> bool:
    """Whether every chunk of the group at ``path`` is written (its last shard has finished)."""
    return bool(zarr.open_group(path, mode="r").attrs.get("complete"))


def open_latents(path: Path) -> zarr.Group:
    """Open a complete latent dataset read-only; refuse an unfinished one."""
    path = Path(path)
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        raise LicError(f"{path}: not a latent dataset") from None
    if not group.attrs.get("complete"):
        raise LicError(f"{path}: dataset is incomplete (generation was interrupted); rerun with --resume")
    return group


def generation_seconds(group: zarr.Group) -> float:
    """Compute seconds spent on the dataset's chunks (0 for datasets of an older lic)."""
    return float(group["seconds"][:].sum()) if "seconds" in group else 0.0


def staleness(group: zarr.Group, model: torch.nn.Module) -> list[str]:
    """What differs between a dataset's provenance and a model it would train; empty if fresh."""
    problems = []
    fp = encoder_fingerprint(model)
    if group.attrs["encoder_fingerprint"] != fp:
        problems.append(f"encoder+hyper fingerprint {group.attrs['encoder_fingerprint'][:16]} (dataset) != "
                        f"{fp[:16]} (checkpoint)")
    cfg = model.config.to_dict()
    for key in ("N", "M", "architecture"):
        if group.attrs["model_config"].get(key) != cfg[key]:
            problems.append(f"{key} {group.attrs['model_config'].get(key)} (dataset) != {cfg[key]} (checkpoint)")
    return problems


class LatentDataset(torch.utils.data.Dataset):
    """Samples of a latent dataset as tensors; ``x`` as float in [0, 1].

    The arrays named in ``keys`` are read into memory once (10,000 patches of 128x128 at M=96
    take about 0.9 GB for ``y_hat`` and ``x``), so training never waits on decompression.
    """

    def __init__(self, path: Path, keys: tuple[str, ...] = ("y_hat", "x")) -> None:
        group = open_latents(path)
        self.attrs = dict(group.attrs)
        self.keys = keys
        self.arrays = {k: group[k][:] for k in keys}

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def select(self, keys: tuple[str, ...]) -> "LatentDataset":
        """The samples as ``keys`` of the arrays already read (no copy)."""
        if missing := set(keys) - set(self.arrays):
            raise KeyError(f"not read: {sorted(missing)}")
        view = copy.copy(self)
        view.keys = tuple(keys)
        return view

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(self._tensor(k, self.arrays[k][i]) for k in self.keys)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Many samples at once (fancy indexing), for fast loaders."""
        idx = np.sort(index.numpy())
        return tuple(self._tensor(k, self.arrays[k][idx]) for k in self.keys)

    @staticmethod
    def _tensor(key: str, value: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(value))
        return t.float().div_(255.0) if key == "x" else t

