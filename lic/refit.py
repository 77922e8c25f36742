"""Fit a checkpoint's entropy tables to its quantizer's own decisions: ``lic tables fit``.

The front halves of training images (never the test images) are coded with the quantizer as the
coder codes them, and the tables refitted to what it chose, for a few rounds (:func:`lic.tables.fit_model`).
The tables join the model's ``state_dict`` under ``fitted_tables.<quantizer>``, so the new checkpoint's
fingerprint, and the staleness of every latent dataset made from it, cover them. The analytic tables
remain the control: ``tables="analytic"`` wherever a quantizer is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from lic.checkpoint import load_checkpoint, save_checkpoint
from lic.codec import pad
from lic.data import list_images, load_image, to_tensor
from lic.entropy import table_digest
from lic.errors import LicError
from lic.tables import FittedTables, fit_model

FIT_IMAGES = 16  # training images fitted on, at most (the first, in name order)
ROUNDS = 4  # rounds of search and refit


def fit_checkpoint(checkpoint: Path, out: Path, quantizer: str, params: dict[str, Any] | None, images: Path,
                   max_images: int = FIT_IMAGES, rounds: int = ROUNDS, device: str = "cpu",
                   progress: bool = True) -> dict[str, Any]:
    """Write ``checkpoint`` with tables fitted to ``quantizer`` (its ``params``; TCQ's, RDOQ's lambda
    derived from the model where not given) as ``out``; returns what its meta records."""
    if rounds < 1 or max_images < 1:
        raise LicError(f"fitting needs at least one round and one image, got {rounds} and {max_images}")
    files = list_images(images)[:max_images]  # refuses a folder without images
    model, obj = load_checkpoint(checkpoint, device)
    q = model.quantizer_for(quantizer, tables="analytic", **(params or {}))
    with torch.inference_mode():
        analyses = [model.analyze(pad(to_tensor(load_image(f)[0]).to(device))) for f in tqdm(files, "images", disable=not progress)]
        fitted = fit_model(model, q, analyses, rounds)
    model.fitted_tables[q.name] = FittedTables.of(fitted, q)
    record = {"quantizer": q.name, "params": q.params(), "images": len(files), "rounds": rounds,
              "digest": f"{table_digest(fitted.table_model()):08x}"}
    meta = dict(obj.get("meta") or {})
    meta["tables"] = {**(meta.get("tables") or {}), q.name: record}
    if model.lmbda is not None:
        meta["lmbda"] = model.lmbda  # the training lambda, which the training state it leaves behind recorded
    save_checkpoint(out, model, meta=meta)
    return record
