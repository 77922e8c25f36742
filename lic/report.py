"""Reports from evaluation results: RD curves, BD-rate tables, metrics for DVC, per-image CSV.

Variants are named ``<quantizer>-<variant>`` (``usq-base``, ``tcq-decoder``, ...) or after a
classical codec (``jpeg``, ``webp``, ``avif``). Each retrained variant is compared with its own
baseline, TCQ with USQ, and the baselines with JPEG.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lic.bdrate import bd_rate_curves  # noqa: E402
from lic.config import CLASSICAL_CODECS as ANCHORS  # noqa: E402
from lic.errors import LicError  # noqa: E402
from lic.fileio import atomic_write_bytes  # noqa: E402

LABELS = {"base": "baseline", "decoder": "decoder retrained", "hyper-decoder": "hyper-decoder + decoder retrained",
          "control": "control (noise fine-tune)"}
METRICS = {"psnr-rgb": "PSNR-RGB (dB)", "ms-ssim-rgb": "MS-SSIM-RGB"}
# the files make_report writes into its folder (dvc.yaml declares them from here)
TABLE_MD, TABLE_CSV, PER_IMAGE = "bdrate.md", "bdrate.csv", "per_image.csv"
README, METRICS_JSON = "README.md", "metrics.json"
PLOTS = {"psnr-rgb": "rd_psnr.png", "ms-ssim-rgb": "rd_msssim.png"}
COLUMNS = {"psnr-rgb": "bd_rate_psnr_pct", "ms-ssim-rgb": "bd_rate_msssim_pct"}


def label(variant: str) -> str:
    if variant in ANCHORS:
        return f"{variant.upper()} (Pillow)"
    q, _, kind = variant.partition("-")
    return f"{q.upper()} {LABELS.get(kind, kind)}"


def load_results(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Every results JSON in ``eval_dir`` by variant name (the file stem)."""
    out = {p.stem: json.loads(p.read_text()) for p in sorted(Path(eval_dir).glob("*.json"))}
    if not out:
        raise LicError(f"{eval_dir}: no results JSON to report on")
    return out


def comparisons(variants: list[str]) -> list[tuple[str, str]]:
    """(test, anchor) pairs that exist among ``variants``."""
    pairs = []
    for v in variants:
        q, _, kind = v.partition("-")
        if v not in ANCHORS and kind != "base" and f"{q}-base" in variants:
            pairs.append((v, f"{q}-base"))
    for kind in ("base", "decoder", "control"):
        if f"tcq-{kind}" in variants and f"usq-{kind}" in variants:
            pairs.append((f"tcq-{kind}", f"usq-{kind}"))
    for v in variants:
        if v not in ANCHORS and "jpeg" in variants:
            pairs.append((v, "jpeg"))
    return pairs


def _curve(res: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
    pts = sorted((r, d) for r, d in zip(res["results"]["bpp"], res["results"][metric]) if not math.isnan(d))
    return [p[0] for p in pts], [p[1] for p in pts]


def bd_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for test, anchor in comparisons(list(results)):
        row: dict[str, Any] = {"test": test, "anchor": anchor}
        for metric in METRICS:
            try:
                row[COLUMNS[metric]] = bd_rate_curves(_curve(results[anchor], metric), _curve(results[test], metric))
            except LicError:
                row[COLUMNS[metric]] = math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def plot(results: dict[str, dict[str, Any]], metric: str, out: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    learned = [v for v in results if v not in ANCHORS]
    max_bpp = max((max(results[v]["results"]["bpp"]) for v in learned), default=2.0)
    colors = {"usq": {"base": "#08306b", "decoder": "#2171b5", "hyper-decoder": "#41b6c4", "control": "#9ecae1"},
              "tcq": {"base": "#67000d", "decoder": "#cb181d", "control": "#fc9272"}}
    markers = {"base": "o", "decoder": "s", "hyper-decoder": "D", "control": "v"}
    lines = {"base": "-", "decoder": "--", "hyper-decoder": "-.", "control": ":"}
    anchor_style = {"jpeg": ("0.35", "x"), "webp": ("0.55", "+"), "avif": ("0.7", "*")}
    for v, res in sorted(results.items()):
        r, d = _curve(res, metric)
        if v in ANCHORS:
            keep = [i for i, x in enumerate(r) if x <= max_bpp * 1.6] or list(range(len(r)))
            color, marker = anchor_style[v]
            ax.plot([r[i] for i in keep], [d[i] for i in keep], color=color, marker=marker, linestyle="-",
                    label=label(v), markersize=6)
            continue
        q, _, kind = v.partition("-")
        ax.plot(r, d, color=colors.get(q, {}).get(kind, "tab:green"), marker=markers.get(kind, "^"),
                linestyle=lines.get(kind, "-"), label=label(v), markersize=5, linewidth=1.5)
    ax.set_xlabel("bits per pixel (real bitstreams)")
    ax.set_ylabel(METRICS[metric])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_report(eval_dir: Path, out_dir: Path, profile: str) -> dict[str, Any]:
    """Write plots, BD-rate tables, ``metrics.json``, per-image CSV and ``README.md`` to ``out_dir``."""
    results = load_results(eval_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = bd_table(results)
    table.to_csv(out_dir / TABLE_CSV, index=False, float_format="%.3f")
    md = table.to_markdown(index=False, floatfmt=".2f") if len(table) else "(no comparisons)"
    (out_dir / TABLE_MD).write_text(md + "\n")
    for metric, name in PLOTS.items():
        plot(results, metric, out_dir / name, f"{METRICS[metric]} vs rate, held-out images, profile {profile}")
    frames = []
    for v in results:
        csv = Path(eval_dir) / f"{v}.csv"
        if csv.exists():
            frames.append(pd.read_csv(csv).assign(variant=v))
    if frames:
        pd.concat(frames).to_csv(out_dir / PER_IMAGE, index=False)
    averages = {v: {k: float(pd.Series(r["results"][k]).mean()) for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")}
                for v, r in results.items()}
    bd = {f"{r.test} vs {r.anchor}": round(r.bd_rate_psnr_pct, 3) for r in table.itertuples()
          if not math.isnan(r.bd_rate_psnr_pct)}
    metrics = {"profile": profile, "bd_rate_psnr_percent": bd, "averages": averages}
    atomic_write_bytes(out_dir / METRICS_JSON, (json.dumps(metrics, indent=2) + "\n").encode())
    readme = [
        "# Reports",
        "",
        f"Made by the `report` stage (`dvc repro`) with profile **{profile}** at commit `{git_commit()}`.",
        "Images: the held-out test split; rates are real bitstream bytes; BD-rates use pchip",
        "interpolation over the shared quality range (negative = rate saved against the anchor).",
        "",
        "![PSNR](rd_psnr.png)",
        "![MS-SSIM](rd_msssim.png)",
        "",
        "## BD-rates",
        "",
        md,
        "",
        "Files: `bdrate.csv`, `metrics.json` (`dvc metrics show`), `per_image.csv`. Measurements made by",
        "hand (timings, benchmarks, settings) are in `reports/README.md`.",
    ]
    (out_dir / README).write_text("\n".join(readme) + "\n")
    return metrics
