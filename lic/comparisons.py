"""The comparisons a report makes, as tables: each retrained family against its base and its
control, TCQ against USQ, every family against JPEG; BD-rates with bootstrap intervals over the
images; the claims across seeds and machines; the open questions; curves that fold.

Variants are named ``<quantizer>-<variant>`` (``usq-base``, ``tcq-decoder``, ...) or after a
classical codec (``jpeg``, ``webp``, ``avif``).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lic.bdrate import bd_rate_ci, bd_rate_curves, load_per_image
from lic.config import CLASSICAL_CODECS as ANCHORS
from lic.config import Family
from lic.errors import LicError

LABELS = {"base": "baseline", "decoder": "decoder retrained", "hyper-decoder": "hyper-decoder + decoder retrained",
          "control": "control (noise fine-tune)"}
METRICS = {"psnr-rgb": "PSNR-RGB (dB)", "ms-ssim-rgb": "MS-SSIM-RGB"}
COLUMNS = {"psnr-rgb": "bd_rate_psnr_pct", "ms-ssim-rgb": "bd_rate_msssim_pct"}


def label(variant: str) -> str:
    if variant in ANCHORS:
        return f"{variant.upper()} (Pillow)"
    q, _, kind = variant.partition("-")
    fam = family_of(kind)
    if fam is None:
        return f"{q.upper()} {LABELS.get(kind, kind)}"
    stale = " (stale indices)" if fam.strategy == "stale" else ""
    return f"{q.upper()} {LABELS[fam.mode]}{stale}" + (f", round {fam.round}" if fam.round > 1 else "")


def family_of(kind: str) -> Family | None:
    try:
        return Family.parse(kind)
    except LicError:
        return None


def read_results(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LicError(f"{path}: not a readable results JSON ({type(exc).__name__})") from None


def load_results(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Every results JSON in ``eval_dir`` by variant name (the file stem)."""
    out = {p.stem: read_results(p) for p in sorted(Path(eval_dir).glob("*.json"))}
    if not out:
        raise LicError(f"{eval_dir}: no results JSON to report on")
    return out


def comparisons(variants: list[str]) -> list[tuple[str, str]]:
    """(test, anchor) pairs that exist among ``variants``: each retrained family against its base
    and against its control (the same budget of noise-trained steps: round ``r``'s control for
    round ``r``), TCQ against USQ, and every family against JPEG."""
    pairs = []
    for v in variants:
        q, _, kind = v.partition("-")
        if v not in ANCHORS and kind != "base" and f"{q}-base" in variants:
            pairs.append((v, f"{q}-base"))
    for v in variants:
        q, _, kind = v.partition("-")
        fam = family_of(kind)
        if fam is None or fam.mode == "control":
            continue
        control = f"{q}-{Family('control', round=fam.round).name}"
        if control in variants:
            pairs.append((v, control))
    for v in variants:
        q, _, kind = v.partition("-")
        if q == "tcq" and f"usq-{kind}" in variants:
            pairs.append((v, f"usq-{kind}"))
    for v in variants:
        if v not in ANCHORS and "jpeg" in variants:
            pairs.append((v, "jpeg"))
    return pairs


def curve(res: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
    pts = sorted((r, d) for r, d in zip(res["results"]["bpp"], res["results"][metric]) if not math.isnan(d))
    return [p[0] for p in pts], [p[1] for p in pts]


def bd_table(results: dict[str, dict[str, Any]], eval_dir: Path) -> pd.DataFrame:
    """Every comparison's BD-rate of the mean curves, its bootstrap interval over images and the
    number of images, from the per-image CSVs in ``eval_dir`` (nan where undefined)."""
    rows = []
    per_image = functools.cache(lambda variant, metric: load_per_image(Path(eval_dir) / f"{variant}.json", metric))
    for test, anchor in comparisons(list(results)):
        row: dict[str, Any] = {"test": test, "anchor": anchor}
        for metric, col in COLUMNS.items():
            try:
                iv = bd_rate_ci(per_image(anchor, metric), per_image(test, metric))
                row |= {col: iv.value, f"{col}_low": iv.low, f"{col}_high": iv.high, "images": len(iv.per_image)}
            except LicError:
                row |= {col: math.nan, f"{col}_low": math.nan, f"{col}_high": math.nan}
        rows.append(row)
    return pd.DataFrame(rows)


def is_claim(test: str, anchor: str) -> bool:
    """The comparisons the report gives across seeds: retrained against control, TCQ against USQ,
    each family against JPEG."""
    return anchor.partition("-")[2].startswith("control") or (test[:3], anchor[:3]) == ("tcq", "usq") or anchor == "jpeg"


def claim_key(test: str, anchor: str) -> str:
    """A claim's stable name in ``metrics.json`` (a column of ``dvc exp show``): ``<test>-vs-<anchor>``."""
    return f"{test}-vs-{anchor}"


def run_table(runs: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """The BD-rate (PSNR, mean curves) of each claim in each run (a seed, or another machine's
    evaluations of the same recipe), their mean and range, and whether every run agrees on its sign;
    anchors (JPEG) missing from a run are read from the first run's results."""
    first = next(iter(runs.values()))
    rows = []
    for test, anchor in comparisons(list(first)):
        if not is_claim(test, anchor):
            continue
        row: dict[str, Any] = {"test": test, "anchor": anchor}
        for name, res in runs.items():
            try:
                a = res[anchor] if anchor in res else first[anchor]
                row[name] = bd_rate_curves(curve(a, "psnr-rgb"), curve(res[test], "psnr-rgb"))
            except (LicError, KeyError):
                row[name] = math.nan
        values = [row[name] for name in runs]
        row["mean"], row["range"] = float(np.mean(values)), float(np.max(values) - np.min(values))
        row["same sign"] = "yes" if all(v < 0 for v in values) or all(v > 0 for v in values) else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def folded(results: dict[str, dict[str, Any]]) -> list[str]:
    """The learned families whose quality does not rise with their rate, one line each, naming the
    metric and the points where it falls: no BD-rate exists against such a curve."""
    out = []
    for v, res in results.items():
        if v in ANCHORS:
            continue
        points = res.get("points") or [str(i) for i in range(len(res["results"]["bpp"]))]
        for metric, name in (("psnr-rgb", "PSNR"), ("ms-ssim-rgb", "MS-SSIM")):
            pts = sorted((r, d, p) for r, d, p in zip(res["results"]["bpp"], res["results"][metric], points)
                         if not math.isnan(d))
            falls = [f"{Path(p).stem} ({r0:.4f} bpp, {d0:.4f}) to {Path(q).stem} ({r1:.4f} bpp, {d1:.4f})"
                     for (r0, d0, p), (r1, d1, q) in zip(pts, pts[1:]) if d1 <= d0]
            if falls:
                out.append(f"`{v}` {name}: " + "; ".join(falls))
    return out


def _cell(r: pd.Series, col: str) -> str:
    """``value [low, high]``; ``*`` marks an interval that excludes 0."""
    if math.isnan(r[col]):
        return "n/a"
    mark = " *" if r[f"{col}_low"] > 0 or r[f"{col}_high"] < 0 else ""
    return f"{r[col]:+.2f} [{r[f'{col}_low']:+.2f}, {r[f'{col}_high']:+.2f}]{mark}"


def table_markdown(table: pd.DataFrame) -> str:
    """``value [low, high]`` per metric; ``*`` marks an interval that excludes 0."""
    shown = pd.DataFrame({"test": table["test"], "anchor": table["anchor"],
                          **{f"BD-rate {METRICS[m].split(' ')[0]} %": table.apply(_cell, axis=1, col=c)
                             for m, c in COLUMNS.items()},
                          "images": table.get("images", pd.Series(dtype=float)).fillna(0).astype(int)})
    return shown.to_markdown(index=False)


def open_questions(results: dict[str, dict[str, Any]], table: pd.DataFrame) -> pd.DataFrame:
    """The paper's open questions, one row per retrained family but the controls: its strategy and
    round, its BD-rate (PSNR) against its base and against its control, and its retraining wall
    time (every lambda's run, with the earlier rounds and the datasets made for later rounds)."""
    rows = []
    for v, res in results.items():
        q, _, kind = v.partition("-")
        fam = None if v in ANCHORS else family_of(kind)
        if fam is None or fam.mode == "control":
            continue
        row = {"quantizer": q.upper(), "family": LABELS[fam.mode], "strategy": fam.strategy if fam.mode ==
               "hyper-decoder" else "", "round": fam.round}
        for name, anchor in (("vs base", f"{q}-base"), ("vs control", f"{q}-{Family('control', round=fam.round).name}")):
            hit = table[(table["test"] == v) & (table["anchor"] == anchor)] if len(table) else table
            row[f"BD-rate {name} %"] = _cell(hit.iloc[0], COLUMNS["psnr-rgb"]) if len(hit) else "n/a"
        walls = [m.get("cumulative_wall_s") for m in res.get("models", {}).values()]
        row["retraining (min)"] = f"{sum(walls) / 60:.1f}" if walls and None not in walls else "n/a"
        rows.append(row)
    return pd.DataFrame(sorted(rows, key=lambda r: (r["quantizer"], r["family"], r["strategy"], r["round"])))


