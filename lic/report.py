"""Reports from evaluation results: RD curves, BD-rate tables, metrics for DVC, per-image CSV.

Variants are named ``<quantizer>-<variant>`` (``usq-base``, ``tcq-decoder``, ...) or after a
classical codec (``jpeg``, ``webp``, ``avif``). Each retrained variant is compared with its own
baseline, TCQ with USQ, and the baselines with JPEG.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lic.bdrate import LEVEL, RESAMPLES, bd_rate_ci, bd_rate_curves, load_per_image  # noqa: E402
from lic.config import CLASSICAL_CODECS as ANCHORS  # noqa: E402
from lic.config import Family  # noqa: E402
from lic.errors import LicError  # noqa: E402
from lic.fileio import atomic_write_bytes  # noqa: E402

LABELS = {"base": "baseline", "decoder": "decoder retrained", "hyper-decoder": "hyper-decoder + decoder retrained",
          "control": "control (noise fine-tune)"}
METRICS = {"psnr-rgb": "PSNR-RGB (dB)", "ms-ssim-rgb": "MS-SSIM-RGB"}
# the files make_report writes into its folder (dvc.yaml declares them from here)
TABLE_MD, TABLE_CSV, PER_IMAGE = "bdrate.md", "bdrate.csv", "per_image.csv"
README, METRICS_JSON = "README.md", "metrics.json"
PLOTS = {"psnr-rgb": "rd_psnr.png", "ms-ssim-rgb": "rd_msssim.png"}
FEW_IMAGES = 10  # below this many images the report warns that its intervals are too narrow
COLUMNS = {"psnr-rgb": "bd_rate_psnr_pct", "ms-ssim-rgb": "bd_rate_msssim_pct"}


def label(variant: str) -> str:
    if variant in ANCHORS:
        return f"{variant.upper()} (Pillow)"
    q, _, kind = variant.partition("-")
    fam = _family(kind)
    if fam is None:
        return f"{q.upper()} {LABELS.get(kind, kind)}"
    stale = " (stale indices)" if fam.strategy == "stale" else ""
    return f"{q.upper()} {LABELS[fam.mode]}{stale}" + (f", round {fam.round}" if fam.round > 1 else "")


def _family(kind: str) -> Family | None:
    try:
        return Family.parse(kind)
    except LicError:
        return None


def _read_results(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LicError(f"{path}: not a readable results JSON ({type(exc).__name__})") from None


def load_results(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Every results JSON in ``eval_dir`` by variant name (the file stem)."""
    out = {p.stem: _read_results(p) for p in sorted(Path(eval_dir).glob("*.json"))}
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
        fam = _family(kind)
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


def _curve(res: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
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


def seed_table(by_seed: dict[int, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """The BD-rate (PSNR, mean curves) of each claim for each seed, their mean and range; anchors
    (JPEG) are shared by all seeds and read from seed 0's results."""
    first = min(by_seed)
    rows = []
    for test, anchor in comparisons(list(by_seed[first])):
        if not is_claim(test, anchor):
            continue
        row: dict[str, Any] = {"test": test, "anchor": anchor}
        for seed, res in sorted(by_seed.items()):
            try:
                a = res[anchor] if anchor in res else by_seed[first][anchor]
                row[f"seed {seed}"] = bd_rate_curves(_curve(a, "psnr-rgb"), _curve(res[test], "psnr-rgb"))
            except (LicError, KeyError):
                row[f"seed {seed}"] = math.nan
        values = [row[f"seed {s}"] for s in sorted(by_seed)]
        row["mean"], row["range"] = float(np.mean(values)), float(np.max(values) - np.min(values))
        rows.append(row)
    return pd.DataFrame(rows)


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
        fam = None if v in ANCHORS else _family(kind)
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


def plot(results: dict[str, dict[str, Any]], metric: str, out: Path, title: str,
         published: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """RD curves of every family and anchor, ``published`` ones (e.g. CompressAI's on Kodak) dashed;
    returns the legend's labels."""
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    learned = [v for v in results if v not in ANCHORS]
    max_bpp = max((max(results[v]["results"]["bpp"]) for v in learned), default=2.0)
    colors = {"usq": {"base": "#08306b", "decoder": "#2171b5", "hyper-decoder": "#41b6c4", "control": "#9ecae1"},
              "tcq": {"base": "#67000d", "decoder": "#cb181d", "hyper-decoder": "#f16913", "control": "#fc9272"}}
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
        fam = _family(kind)
        mode = fam.mode if fam else kind
        marker = "*" if fam and fam.round > 1 else "P" if fam and fam.strategy == "stale" else markers.get(mode, "^")
        ax.plot(r, d, color=colors.get(q, {}).get(mode, "tab:green"), marker=marker, linestyle=lines.get(mode, "-"),
                label=label(v), markersize=7 if marker == "*" else 5, linewidth=1.5)
    for res in (published or {}).values():
        if metric in res["results"]:
            r, d = _curve(res, metric)
            ax.plot(r, d, color="black", linestyle="--", marker=".", label=res.get("name", "published"), linewidth=1)
    ax.set_xlabel("bits per pixel (real bitstreams)")
    ax.set_ylabel(METRICS[metric])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return [line.get_label() for line in ax.get_lines()]


def git_commit() -> str:
    """The commit the report is made at; "with uncommitted changes" when a tracked file other than what
    the pipeline itself writes (``dvc.lock``, ``reports/``) differs from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock",
                                ":!reports"], capture_output=True, text=True).stdout.strip()
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_report(eval_dir: Path, out_dir: Path, profile: str, published: list[Path] = (),
                seed_dirs: dict[int, Path] | None = None) -> dict[str, Any]:
    """Write plots, BD-rate tables, ``metrics.json``, per-image CSV and ``README.md`` to ``out_dir``.

    ``eval_dir`` holds seed 0's results and the anchors; ``seed_dirs`` other seeds' results, whose
    spread the report gives for the claims of :func:`is_claim`. ``published``: results JSONs of
    published curves to overlay on the plots (off by default; for Kodak,
    ``reports/anchors/compressai-mbt2018-mean-kodak.json``).
    """
    results = load_results(eval_dir)
    by_seed = {0: results, **{s: load_results(d) for s, d in (seed_dirs or {}).items()}}
    spread = seed_table(by_seed) if len(by_seed) > 1 else pd.DataFrame()
    overlay = {str(p): _read_results(Path(p)) for p in published}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = bd_table(results, eval_dir)
    questions = open_questions(results, table)
    table.to_csv(out_dir / TABLE_CSV, index=False, float_format="%.3f")
    md = table_markdown(table) if len(table) else "(no comparisons)"
    (out_dir / TABLE_MD).write_text(md + "\n")
    for metric, name in PLOTS.items():
        plot(results, metric, out_dir / name, f"{METRICS[metric]} vs rate, held-out images, profile {profile}",
             overlay)
    frames = []
    for v in results:
        csv = Path(eval_dir) / f"{v}.csv"
        if csv.exists():
            frames.append(pd.read_csv(csv).assign(variant=v))
    if frames:
        pd.concat(frames).to_csv(out_dir / PER_IMAGE, index=False)
    averages = {v: {k: float(pd.Series(r["results"][k]).mean()) for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")}
                for v, r in results.items()}
    defined = [r for r in table.itertuples() if not math.isnan(r.bd_rate_psnr_pct)]
    bd = {f"{r.test} vs {r.anchor}": round(r.bd_rate_psnr_pct, 3) for r in defined}
    ci = {f"{r.test} vs {r.anchor}": [round(r.bd_rate_psnr_pct_low, 3), round(r.bd_rate_psnr_pct_high, 3)]
          for r in defined}
    metrics = {"profile": profile, "bd_rate_psnr_percent": bd, "bd_rate_psnr_ci95": ci, "averages": averages}
    if len(spread):
        metrics["bd_rate_psnr_by_seed"] = {f"{r['test']} vs {r['anchor']}": {k: round(v, 3) for k, v in r.items()
                                                                             if k.startswith("seed ")}
                                           for r in spread.to_dict("records")}
    atomic_write_bytes(out_dir / METRICS_JSON, (json.dumps(metrics, indent=2) + "\n").encode())
    n = max(len(r.get("images", [])) for v, r in results.items() if v not in ANCHORS) if \
        any(v not in ANCHORS for v in results) else 0
    few_images = [] if n >= FEW_IMAGES else [
        "", f"**Only {n} images**: a bootstrap over so few has few distinct resamples and understates the",
        "uncertainty; even rows with `*` are indications, not conclusions."]
    readme = [
        "# Reports",
        "",
        f"Made by the `report` stage (`dvc repro`) with profile **{profile}** at commit `{git_commit()}`.",
        "Images: the held-out test split; rates are real bitstream bytes; BD-rates use pchip",
        "interpolation over the shared quality range (negative = rate saved against the anchor).",
        f"Each BD-rate is that of the mean curves, with its {LEVEL:.0%} paired bootstrap interval over",
        f"the images ({RESAMPLES} resamples, seeded); `*` marks an interval that excludes 0. Rows",
        "without `*` are not distinguishable from no difference on these images.",
        *few_images,
        *([] if not overlay else ["", "Dashed black on the plots, published curves: " + "; ".join(
            f"{res.get('name', 'published')} (`{path}`)" for path, res in overlay.items()) + "."]),
        "",
        "![PSNR](rd_psnr.png)",
        "![MS-SSIM](rd_msssim.png)",
        "",
        "## BD-rates",
        "",
        md,
        "",
        *([] if not len(questions) else [
            "## Open questions: phase 4 on TCQ, and rounds", "",
            "Each retrained family's strategy (phase 4: `online` quantizes every batch again, `stale` keeps the",
            "dataset's indices) and round (round r retrains round r-1's models on a dataset made from them),",
            "its BD-rate (PSNR) against its base and against its control of equal steps, and its retraining",
            "wall time over all lambdas (with earlier rounds and the datasets they made):", "",
            questions.to_markdown(index=False), ""]),
        *([] if not len(spread) else [
            "## Across seeds", "",
            f"BD-rate in % (PSNR, mean curves) of the claims for each of the {len(by_seed)} seeds (training, latent",
            "sampling and retraining seeded alike; the anchors are shared), their mean and range:", "",
            spread.to_markdown(index=False, floatfmt="+.2f"), ""]),
        "Files: `bdrate.csv`, `metrics.json` (`dvc metrics show`), `per_image.csv`. Measurements made by",
        "hand (timings, benchmarks, settings) are dated entries of the lab notebook, `reports/notebook/`.",
    ]
    (out_dir / README).write_text("\n".join(readme) + "\n")
    return metrics
