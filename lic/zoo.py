"""Field-grade base models: CompressAI's pretrained zoo as ``lic`` checkpoints.

Every zoo model with a conditional Gaussian entropy model imports, MSE, at every quality the zoo
has, as the lic model kind that extends its CompressAI class:

| zoo model | lic kind | qualities |
|---|---|---|
| ``bmshj2018-hyperprior`` | ``scale-hyperprior`` (``means = 0``) | 1-8 |
| ``mbt2018-mean`` | ``mean-scale-hyperprior`` | 1-8 |
| ``mbt2018`` | ``mbt2018`` (spatial context) | 1-8 |
| ``cheng2020-anchor``, ``cheng2020-attn`` | the same names (spatial context) | 1-6 |

``bmshj2018-factorized`` is left out: it codes ``y`` with a fixed factorized density per channel, so
there are no ``means`` and ``scales`` for the quantizers' tables and TCQ's search to be built from,
and nothing for phase 4 to retrain. :func:`import_zoo` loads the weights through ``compressai.zoo``
with ``pretrained=True``, so the download and its cache (``$TORCH_HOME/hub/checkpoints``) are
CompressAI's and torch.hub's. CompressAI does not check the file's hash; the checkpoint records the
SHA-256 of the cached file and whether it starts with the hash prefix that torch.hub's file names
carry. A mirror of the zoo's files (``mirror``, or ``LIC_ZOO_MIRROR``: a base URL serving the same
file names) fills torch.hub's cache instead of CompressAI's host, with :func:`lic.download.fetch`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from lic import compat
from lic.checkpoint import UNREADABLE, save_checkpoint
from lic.config import ZOO_KINDS, ModelConfig
from lic.download import fetch
from lic.errors import LicError
from lic.models import build_model
from lic.sources import Remote

ARCHITECTURES = ZOO_KINDS
# CompressAI's MSE training lambdas per quality (loss lambda * 255^2 * MSE + bpp), from its zoo docs;
# cheng2020 has qualities 1-6
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
QUALITIES = {a: tuple(range(1, 7)) if a.startswith("cheng2020") else tuple(LAMBDAS) for a in ARCHITECTURES}
_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's convention: NAME-<sha256 prefix>.EXT


def cached_file(url: str) -> Path:
    """Where torch.hub keeps (and looks for) the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def zoo_source(quality: int, architecture: str = "mbt2018-mean", metric: str = "mse") -> dict[str, Any]:
    """Architecture, lic kind, metric, quality, URL, channels and training lambda of a zoo model."""
    if architecture not in ARCHITECTURES:
        raise LicError(f"unknown zoo architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    if metric != "mse":
        raise LicError(f"only MSE models have the lambdas lic trains at; got metric {metric!r}")
    if quality not in QUALITIES[architecture]:
        raise LicError(f"{architecture} qualities are {QUALITIES[architecture][0]}-{QUALITIES[architecture][-1]}, "
                       f"got {quality}")
    channels = compat.zoo_channels(architecture, quality)
    N, M = channels if len(channels) == 2 else (channels[0], channels[0])  # cheng2020: M = N
    return {"architecture": architecture, "kind": ARCHITECTURES[architecture], "metric": metric,
            "quality": quality, "url": compat.zoo_url(architecture, metric, quality), "N": N, "M": M,
            "lmbda": LAMBDAS[quality]}


def import_zoo(quality: int, out: Path, architecture: str = "mbt2018-mean", metric: str = "mse",
               progress: bool = True, mirror: str | None = None) -> dict[str, Any]:
    """Write the zoo model as checkpoint ``out``; returns its recorded source. ``mirror`` (default
    ``LIC_ZOO_MIRROR``) serves the zoo's file names when torch.hub's cache lacks the file."""
    source = zoo_source(quality, architecture, metric)
    cache = cached_file(source["url"])
    mirror = mirror or os.environ.get("LIC_ZOO_MIRROR") or None
    if mirror and not cache.is_file():
        fetch(Remote(source["url"], None).at(mirror), cache, progress)
    try:
        net = compat.zoo_model(architecture, quality, metric, pretrained=True, progress=progress)
    except urllib.error.URLError as exc:
        raise LicError(f"cannot download {source['url']} ({exc.reason}); without network, place that file at "
                       f"{cache}") from None
    except (RuntimeError, EOFError, KeyError, pickle.UnpicklingError) as exc:
        raise LicError(f"{cache}: not the zoo's weights ({type(exc).__name__}); delete it to download again") from None
    model = build_model(ModelConfig(architecture=source["kind"], N=source["N"], M=source["M"]))
    model.load_state_dict(net.state_dict())
    model.update(force=True)
    digest = hashlib.sha256(cache.read_bytes()).hexdigest()
    prefix = _HASH.search(cache.name)
    source |= {"sha256": digest, "hash_matches_url": bool(prefix and digest.startswith(prefix.group(1)))}
    if not source["hash_matches_url"]:
        warnings.warn(f"{cache}: SHA-256 {digest[:8]}... does not start with the hash in its name", stacklevel=2)
    save_checkpoint(out, model, meta={"source": source})
    return source


def import_weights(weights: Path, config: ModelConfig, lmbda: float, out: Path) -> dict[str, Any]:
    """Write CompressAI weights of your own as checkpoint ``out``: ``weights`` is a ``torch.save`` file of
    the model's ``state_dict``, or of a training checkpoint holding it as ``state_dict`` (as CompressAI's
    example trainer writes; DDP's ``module.`` prefixes are dropped), for the model ``config`` names,
    trained at ``lmbda`` (what the searches' lambda derives from). Returns the recorded source."""
    if not weights.is_file():
        raise LicError(f"{weights}: no such weights file")
    try:
        obj = torch.load(weights, map_location="cpu", weights_only=True)
    except (*UNREADABLE, pickle.UnpicklingError) as exc:
        raise LicError(f"{weights}: not a torch.save file of weights ({type(exc).__name__})") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise LicError(f"{weights}: holds no state dict (a dict of tensors, or one under 'state_dict')")
    if not (lmbda > 0):
        raise LicError(f"the training lambda must be positive, got {lmbda}")
    model = build_model(config)
    try:
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    except (RuntimeError, KeyError, ValueError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LicError(f"{weights}: weights do not fit {config.architecture} N={config.N} M={config.M} "
                       f"({detail[:200]})") from None
    model.update(force=True)
    source = {"weights": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
              "architecture": config.architecture, "N": config.N, "M": config.M, "lmbda": lmbda}
    save_checkpoint(out, model, meta={"source": source})
    return source
