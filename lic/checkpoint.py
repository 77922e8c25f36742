"""Checkpoints: one file with the model config, the weights, the entropy-coder tables and,
while training, the state needed to resume. Loaded with ``torch.load(weights_only=True)``,
so no pickled code ever runs.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Iterable

import torch

from lic.config import ModelConfig
from lic.models import build_model
from lic.errors import LicError
from lic.fileio import atomic_write
from lic.machine import machine
from lic.models import Hyperprior

FORMAT = "lic-checkpoint"
VERSION = 1
# the synthesis transform: the part of a model that a latent dataset's arrays do not depend on, but
# through a decoder-weighted search's weights (TCQ's, RDOQ's; its retraining rounds: lic.config.RetrainPlan)
DECODER_PREFIX = "g_s."


def weights_fingerprint(state_dict: dict[str, torch.Tensor], exclude: Iterable[str] = ()) -> str:
    """SHA-256 (hex) over names, dtypes, shapes and bytes of the tensors, sorted by name.

    ``exclude``: name prefixes left out, e.g. :data:`DECODER_PREFIX` for what a dataset depends on.
    """
    h = hashlib.sha256()
    exclude = tuple(exclude)
    for name in sorted(state_dict):
        if exclude and name.startswith(exclude):
            continue
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: Path, model: Hyperprior, train_state: dict[str, Any] | None = None,
                    meta: dict[str, Any] | None = None, retrain_state: dict[str, Any] | None = None) -> str:
    """Write ``model`` (config, weights, tables), the machine that wrote it (:func:`lic.machine.machine`),
    optional ``train_state`` or ``retrain_state`` (what a killed training or retraining resumes from) and
    ``meta`` (how it was made); returns the weight fingerprint."""
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fingerprint = weights_fingerprint(state_dict)
    obj: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": state_dict,
        "fingerprint": fingerprint,
        "machine": machine(next(model.parameters()).device),
    }
    if train_state is not None:
        obj["train_state"] = train_state
    if retrain_state is not None:
        obj["retrain_state"] = retrain_state
    if meta is not None:
        obj["meta"] = meta
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
    return fingerprint


# what torch.load raises on a file that is not one of its own (besides pickle's refusal of code)
UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, AttributeError, IndexError, KeyError)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict, validated for format; never runs pickled code."""
    path = Path(path)
    if not path.is_file():
        raise LicError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise LicError(f"{path}: refused, not a plain-weights checkpoint ({first[:160]})") from None
    except UNREADABLE as exc:
        raise LicError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise LicError(f"{path}: not a lic checkpoint")
    if obj.get("version") != VERSION:
        raise LicError(f"{path}: checkpoint version {obj.get('version')} is not supported (want {VERSION})")
    return obj


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[Hyperprior, dict[str, Any]]:
    """The model of checkpoint ``path`` in eval mode on ``device``, and the raw checkpoint dict. A
    checkpoint of a model of the user's own (``module:Class``) imports that module: load only
    checkpoints whose model code you trust."""
    obj = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(dict(obj["config"]))
    except (KeyError, TypeError) as exc:
        raise LicError(f"{path}: checkpoint config is malformed ({exc})") from None
    state_dict = obj.get("state_dict")
    if not isinstance(state_dict, dict):
        raise LicError(f"{path}: checkpoint has no weights")
    if weights_fingerprint(state_dict) != obj.get("fingerprint"):
        raise LicError(f"{path}: weights do not match the recorded fingerprint (corrupted file?)")
    model = build_model(config)
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, KeyError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LicError(f"{path}: weights do not match config N={config.N} M={config.M} ({detail[:200]})") from None
    model.lmbda = training_lambda(obj)
    return model.to(device).eval(), obj


def training_lambda(obj: dict[str, Any]) -> float | None:
    """The lambda a checkpoint was trained at: its training state's, its source's (zoo imports), its
    retraining's (a retrained checkpoint keeps no training state; later rounds start from it), or the
    one its meta carries over (a checkpoint with fitted tables, :mod:`lic.refit`)."""
    meta = obj.get("meta") or {}
    for lmbda in ((obj.get("train_state") or {}).get("train_config", {}).get("lmbda"),
                  meta.get("source", {}).get("lmbda"), (meta.get("retrain") or {}).get("config", {}).get("lmbda"),
                  meta.get("lmbda")):
        if lmbda is not None:
            return lmbda
    return None
