"""Inspecting latent datasets: provenance, index statistics, and the difference of two versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from compressai.entropy_models import GaussianConditional

from lic.latents import open_latents
from lic.quantizers import make_quantizer

HIST_RANGE = 4  # histogram of indices -4..4, plus the mass beyond


def index_stats(path: Path) -> dict[str, Any]:
    """Histogram, zero fraction and mean model rate (bits per element) of a dataset's indices."""
    group = open_latents(path)
    k = torch.from_numpy(group["indices"][:])
    scales = torch.from_numpy(group["scales"][:])
    q = make_quantizer(group.attrs["quantizer"], GaussianConditional(None), **group.attrs["quantizer_params"])
    bits = -torch.log2(q.likelihoods(k, scales))
    values = k.numpy().ravel()
    hist = {str(v): int((values == v).sum()) for v in range(-HIST_RANGE, HIST_RANGE + 1)}
    hist[f"|k|>{HIST_RANGE}"] = int((np.abs(values) > HIST_RANGE).sum())
    return {"elements": int(values.size), "zero_fraction": float((values == 0).mean()),
            "mean_bits_per_element": float(bits.mean()), "histogram": hist}


def describe(path: Path) -> dict[str, Any]:
    """Provenance and index statistics of one dataset."""
    group = open_latents(path)
    attrs = {k: v for k, v in group.attrs.items() if k != "chunks_done"}
    return {"path": str(path), "provenance": attrs, "indices": index_stats(path)}


def diff(a: Path, b: Path) -> dict[str, Any]:
    """Provenance keys that differ, both index statistics, and how many indices differ."""
    ga, gb = open_latents(a), open_latents(b)
    keys = sorted((set(ga.attrs) | set(gb.attrs)) - {"chunks_done", "created"})
    changed = {k: [ga.attrs.get(k), gb.attrs.get(k)] for k in keys if ga.attrs.get(k) != gb.attrs.get(k)}
    out: dict[str, Any] = {"a": str(a), "b": str(b), "provenance_changed": changed,
                           "indices": {"a": index_stats(a), "b": index_stats(b)}}
    ka, kb = ga["indices"], gb["indices"]
    if ka.shape == kb.shape:
        n_diff = int(np.sum(ka[:] != kb[:]))
        out["indices_differing"] = {"count": n_diff, "fraction": n_diff / int(np.prod(ka.shape))}
    else:
        out["indices_differing"] = f"shapes differ: {list(ka.shape)} vs {list(kb.shape)}"
    return out
