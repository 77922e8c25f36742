"""Evaluation on real bitstreams: bpp from real bytes, PSNR and MS-SSIM on 8-bit RGB.

Results follow CompressAI's JSON format (one entry per rate point in each list) and come with
a per-image CSV. Pillow's JPEG, WebP and AVIF give classical anchors on the same images.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image, features
from pytorch_msssim import ms_ssim as _ms_ssim
from tqdm import tqdm

from lic.codec import Codec
from lic.config import CLASSICAL_CODECS, EvaluateConfig
from lic.data import load_image
from lic.errors import LicError
from lic.machine import machine

CLASSICAL = dict(zip(CLASSICAL_CODECS, (("JPEG", "jpg"), ("WEBP", "webp"), ("AVIF", "avif"))))  # format, feature
MS_SSIM_MIN_SIDE = 161  # 5 scales of an 11-tap window


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (``inf`` when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM on 8-bit RGB; ``nan`` for images too small for its five scales."""
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return math.nan
    ta, tb = (torch.from_numpy(v).permute(2, 0, 1)[None].double() for v in (a, b))
    return float(_ms_ssim(ta, tb, data_range=255.0))


@dataclass
class ImageResult:
    point: str
    image: str
    height: int
    width: int
    bytes: int
    bpp: float
    psnr_rgb: float
    ms_ssim_rgb: float
    encoding_time: float
    decoding_time: float


@dataclass
class Evaluation:
    """Per-image results of several rate points, and the images that could not be read."""

    name: str
    description: str
    rows: list[ImageResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)  # per point: how its model was retrained
    machine: dict = field(default_factory=machine)  # what coded it (lic.machine)

    def points(self) -> list[str]:
        return list(dict.fromkeys(r.point for r in self.rows))

    def to_json(self) -> dict:
        """CompressAI's results format; each list has one value per point (mean over images)."""
        keys = {"psnr-rgb": "psnr_rgb", "ms-ssim-rgb": "ms_ssim_rgb", "bpp": "bpp",
                "encoding_time": "encoding_time", "decoding_time": "decoding_time"}
        results: dict[str, list[float]] = {k: [] for k in keys}
        for point in self.points():
            rows = [r for r in self.rows if r.point == point]
            for key, attr in keys.items():
                vals = [getattr(r, attr) for r in rows if not math.isnan(getattr(r, attr))]
                results[key].append(float(np.mean(vals)) if vals else math.nan)
        return {
            "name": self.name,
            "description": self.description,
            "results": results,
            "points": self.points(),
            "images": sorted({r.image for r in self.rows}),
            "failed": self.failed,
            **({"models": self.models} if self.models else {}),
            "machine": self.machine,
        }

    def write(self, out_json: Path) -> Path:
        """Write the JSON and, beside it, ``<stem>.csv`` with one row per (point, image)."""
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        out_csv = out_json.with_suffix(".csv")
        with out_csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ImageResult.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(r) for r in self.rows)
        return out_csv


Coder = Callable[[np.ndarray], tuple[int, np.ndarray, float, float]]  # bytes, decoded, enc s, dec s


def _run(ev: Evaluation, images: Iterable[Path], coders: dict[str, Coder], progress: bool) -> Evaluation:
    images = list(images)
    loaded: list[tuple[str, np.ndarray]] = []
    for path in images:
        try:
            rgb, notes = load_image(path)
        except LicError as exc:
            ev.failed[path.name] = str(exc)
            continue
        if notes:
            ev.notes[path.name] = notes
        loaded.append((path.name, rgb))
    if not loaded:
        raise LicError("no image could be read: " + "; ".join(ev.failed.values()))
    bar = tqdm(total=len(loaded) * len(coders), desc=f"eval {ev.name}", disable=not progress, dynamic_ncols=True)
    for point, coder in coders.items():
        for name, rgb in loaded:
            nbytes, decoded, t_enc, t_dec = coder(rgb)
            h, w = rgb.shape[:2]
            ev.rows.append(ImageResult(point, name, h, w, nbytes, nbytes * 8 / (h * w), psnr(rgb, decoded),
                                       ms_ssim(rgb, decoded), t_enc, t_dec))
            bar.update(1)
    bar.close()
    return ev


def _lic_coder(codec: Codec, quantizer_name: str | None, params: dict) -> Coder:
    quantizer = codec.quantizer(quantizer_name, **params)

    def code(rgb: np.ndarray) -> tuple[int, np.ndarray, float, float]:
        t0 = time.perf_counter()
        data = codec.encode(rgb, quantizer).data
        t1 = time.perf_counter()
        decoded = codec.decode(data)
        return len(data), decoded, t1 - t0, time.perf_counter() - t1

    return code


def evaluate_checkpoints(
    checkpoints: list[Path], images: list[Path], quantizer: str | None = None, device: str = "cpu",
    name: str = "lic", progress: bool = True, quantizer_params: dict | None = None,
) -> Evaluation:
    """One rate point per checkpoint, coded with ``quantizer`` (default: the checkpoint's own)."""
    params = quantizer_params or {}
    codecs = {str(p): Codec.from_checkpoint(p, device) for p in checkpoints}
    coders = {p: _lic_coder(codec, quantizer, params) for p, codec in codecs.items()}
    fitted = any(codec.quantizer(quantizer, **params).fitted for codec in codecs.values())
    label = " ".join([quantizer or "own quantizer"] + [f"{k}={v}" for k, v in params.items()]
                     + (["with fitted tables where the checkpoint has them"] if fitted else []))
    models = {p: _retraining(codec.meta) for p, codec in codecs.items()}
    kinds = sorted({c.model.config.architecture for c in codecs.values()})
    ev = Evaluation(name, f"lic {', '.join(kinds)}, {label}, real bitstreams",
                    models={p: m for p, m in models.items() if m}, machine=machine(device))
    return _run(ev, images, coders, progress)


def _retraining(meta: dict) -> dict:
    """What a results file keeps of a retrained checkpoint's record: mode, strategy, round, times."""
    rec = meta.get("retrain") or {}
    keep = {k: rec[k] for k in ("mode", "round", "wall_s", "cumulative_wall_s") if k in rec}
    return keep | ({"strategy": rec["config"].get("strategy", "online")} if "config" in rec else {})


def _pillow_coder(fmt: str, quality: int) -> Coder:
    def code(rgb: np.ndarray) -> tuple[int, np.ndarray, float, float]:
        buf = io.BytesIO()
        t0 = time.perf_counter()
        Image.fromarray(rgb).save(buf, format=fmt, quality=quality)
        t1 = time.perf_counter()
        decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return buf.tell(), decoded, t1 - t0, time.perf_counter() - t1

    return code


def evaluate_codec(codec: str, images: list[Path], qualities: Iterable[int] = EvaluateConfig.qualities,
                   progress: bool = True) -> Evaluation:
    """Pillow's ``jpeg``, ``webp`` or ``avif`` over a quality sweep."""
    if codec not in CLASSICAL:
        raise LicError(f"unknown codec {codec!r}; choose one of {sorted(CLASSICAL)}")
    fmt, feature = CLASSICAL[codec]
    if not features.check(feature):
        raise LicError(f"this Pillow build cannot write {fmt}")
    coders = {f"q{q}": _pillow_coder(fmt, q) for q in qualities}
    return _run(Evaluation(codec, f"Pillow {fmt} quality sweep"), images, coders, progress)
