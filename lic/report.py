"""Reports from evaluation results: RD curves (plots, and plot data that ``dvc plots`` draws),
BD-rate tables, ``metrics.json`` with the claims under stable keys, a per-image CSV, and a README
that names the profile, the commit and the machines; the comparisons are :mod:`lic.comparisons`'.
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

from lic.bdrate import LEVEL, METHOD  # noqa: E402
from lic.comparisons import (COLUMNS, METRICS, bd_table, claim_key, coding_table, curve, family_of, folded,  # noqa: E402
                             is_claim, label, load_results, method_table, open_questions, read_results, run_table,
                             table_markdown)
from lic.config import CLASSICAL_CODECS as ANCHORS  # noqa: E402
from lic.config import coding_of  # noqa: E402
from lic.fileio import atomic_write_bytes  # noqa: E402
from lic.machine import describe  # noqa: E402
from lic import profiles  # noqa: E402

# the files make_report writes into its folder (dvc.yaml declares them from here)
TABLE_MD, TABLE_CSV, PER_IMAGE = "bdrate.md", "bdrate.csv", "per_image.csv"
README, METRICS_JSON = "README.md", "metrics.json"
PLOTS = {"psnr-rgb": "rd_psnr.png", "ms-ssim-rgb": "rd_msssim.png"}
CURVES = "curves"  # one CSV per family: point, bpp, psnr_rgb, ms_ssim_rgb (dvc plots show / diff)
FEW_IMAGES = 10  # below this many images the report warns that its claims rest on few photos


def plot(results: dict[str, dict[str, Any]], metric: str, out: Path, title: str,
         published: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """RD curves of every family and anchor, ``published`` ones (e.g. CompressAI's on Kodak) dashed;
    returns the legend's labels."""
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    learned = [v for v in results if v not in ANCHORS]
    max_bpp = max((max(results[v]["results"]["bpp"]) for v in learned), default=2.0)
    colors = {"usq": {"base": "#08306b", "decoder": "#2171b5", "hyper-decoder": "#41b6c4", "control": "#9ecae1",
                      "hyper-control": "#c6dbef"},
              "rdoq": {"decoder": "#238b45", "hyper-decoder": "#74c476"},  # USQ's base and controls
              "tcq": {"base": "#67000d", "decoder": "#cb181d", "hyper-decoder": "#f16913", "control": "#fc9272",
                      "hyper-control": "#fdd0a2"}}
    markers = {"base": "o", "decoder": "s", "hyper-decoder": "D", "control": "v", "hyper-control": "^"}
    lines = {"base": "-", "decoder": "--", "hyper-decoder": "-.", "control": ":", "hyper-control": ":"}
    anchor_style = {"jpeg": ("0.35", "x"), "webp": ("0.55", "+"), "avif": ("0.7", "*")}
    for v, res in sorted(results.items()):
        r, d = curve(res, metric)
        if v in ANCHORS:
            keep = [i for i, x in enumerate(r) if x <= max_bpp * 1.6] or list(range(len(r)))
            color, marker = anchor_style[v]
            ax.plot([r[i] for i in keep], [d[i] for i in keep], color=color, marker=marker, linestyle="-",
                    label=label(v), markersize=6)
            continue
        q, _, kind = v.partition("-")
        fam = family_of(kind)
        mode = fam.mode if fam else kind
        marker = "*" if fam and fam.round > 1 else "P" if fam and fam.strategy == "stale" else markers.get(mode, "^")
        line = lines.get(mode, "-")
        if coding_of(v) and mode != "base":  # a base coded with another quantizer: its base's colour, dotted
            mode, marker, line = "base", {"usq": "X", "rdoq": "h", "tcq": "p"}[coding_of(v)[1]], (0, (1, 1))
        ax.plot(r, d, color=colors.get(q, {}).get(mode, "tab:green"), marker=marker, linestyle=line,
                label=label(v), markersize=7 if marker == "*" else 5, linewidth=1.5)
    for res in (published or {}).values():
        if metric in res["results"]:
            r, d = curve(res, metric)
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


def git_commit(profile: str | None = None) -> str:
    """The commit the report is made at; "with uncommitted changes" when a tracked file differs from it,
    other than what the pipeline itself writes: ``dvc.lock``, ``dvc.yaml`` (written for the profile by
    ``python -m flows.stages``), ``reports/``, and ``params.yaml`` where it is the
    profile as ``make run PROFILE=<profile>`` installs it (:func:`lic.profiles.render`)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock",
                                 ":!dvc.yaml", ":!reports"], capture_output=True, text=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if profile and Path("params.yaml").is_file() and profiles.installed(Path("params.yaml").read_text()) == profile:
        status = [line for line in status if line[3:] != "params.yaml"]
    return sha.stdout.strip() + (" (with uncommitted changes)" if status else "")


def write_curves(results: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """Each family's RD points as ``folder/<family>.csv`` (point, bpp, psnr_rgb, ms_ssim_rgb), the data
    of the ``dvc.yaml`` plots, so that ``dvc plots diff`` draws two experiments' curves in one plot."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        if old.stem not in results:
            old.unlink()
    out = []
    for v, res in sorted(results.items()):
        r = res["results"]
        frame = pd.DataFrame({"point": res.get("points") or list(range(len(r["bpp"]))), "bpp": r["bpp"],
                              "psnr_rgb": r["psnr-rgb"], "ms_ssim_rgb": r["ms-ssim-rgb"]}).sort_values("bpp")
        frame["point"] = [Path(str(p)).stem for p in frame["point"]]
        frame.to_csv(folder / f"{v}.csv", index=False, float_format="%.6f")
        out.append(folder / f"{v}.csv")
    return out


def claims(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The claims (retrained against control, one quantizer against another, each against JPEG) under
    stable keys, with PSNR and MS-SSIM BD-rates and their intervals: columns of ``dvc exp show``."""
    out = {}
    for r in table.to_dict("records"):
        if not is_claim(r["test"], r["anchor"]):
            continue
        values = {}
        for metric, col in COLUMNS.items():
            name = "psnr" if metric == "psnr-rgb" else "ms_ssim"
            if not math.isnan(r[col]):
                values[name] = round(r[col], 3)
            if not math.isnan(r[f"{col}_low"]):  # no interval under 3 images
                values |= {f"{name}_low": round(r[f"{col}_low"], 3), f"{name}_high": round(r[f"{col}_high"], 3)}
        out[claim_key(r["test"], r["anchor"])] = values
    return out


def make_report(eval_dir: Path, out_dir: Path, profile: str, published: list[Path] = (),
                runs: dict[str, Path] | None = None) -> dict[str, Any]:
    """Write plots, curve data, BD-rate tables, ``metrics.json``, per-image CSV and ``README.md`` to
    ``out_dir``.

    ``eval_dir`` holds the first run's results and the anchors; ``runs`` other runs of the same
    recipe by name (other seeds' evaluations, or another machine's put beside them), whose spread the
    report gives for the claims of :func:`lic.comparisons.is_claim`. ``published``: results JSONs of
    published curves to overlay on the plots (for Kodak, ``reports/anchors/compressai-mbt2018-mean-kodak.json``).
    """
    results = load_results(eval_dir)
    every = {"seed 0": results, **{name: load_results(d) for name, d in (runs or {}).items()}}
    spread = run_table(every) if len(every) > 1 else pd.DataFrame()
    overlay = {str(p): read_results(Path(p)) for p in published}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    same_sign = {(r["test"], r["anchor"]): r["same sign"] != "no" for r in spread.to_dict("records")}
    table = bd_table(results, eval_dir, same_sign)
    questions = open_questions(results, table)
    table.to_csv(out_dir / TABLE_CSV, index=False, float_format="%.3f")
    folds = folded(results)
    warning = [] if not folds else [
        "**Folded curves.** These families' quality does not rise with their rate, so no BD-rate exists against "
        "them (their rows read n/a):", "", *[f"- {f}" for f in folds], ""]
    md = table_markdown(table) if len(table) else "(no comparisons)"
    (out_dir / TABLE_MD).write_text("\n".join(warning + [md]) + "\n")
    for metric, name in PLOTS.items():
        plot(results, metric, out_dir / name, f"{METRICS[metric]} vs rate, held-out images, profile {profile}",
             overlay)
    write_curves(results, out_dir / CURVES)
    frames = [pd.read_csv(Path(eval_dir) / f"{v}.csv").assign(variant=v) for v in results
              if (Path(eval_dir) / f"{v}.csv").exists()]
    if frames:
        pd.concat(frames).to_csv(out_dir / PER_IMAGE, index=False)
    averages = {v: {k: float(pd.Series(r["results"][k]).mean()) for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")}
                for v, r in results.items()}
    defined = [r for r in table.itertuples() if not math.isnan(r.bd_rate_psnr_pct)]
    metrics = {"profile": profile, "claims": claims(table),
               "bd_rate_psnr_percent": {f"{r.test} vs {r.anchor}": round(r.bd_rate_psnr_pct, 3) for r in defined},
               "bd_rate_psnr_ci95": {f"{r.test} vs {r.anchor}": [round(r.bd_rate_psnr_pct_low, 3),
                                                                 round(r.bd_rate_psnr_pct_high, 3)] for r in defined
                                     if not math.isnan(r.bd_rate_psnr_pct_low)},
               "averages": averages, "folded": folds}
    if len(spread):
        metrics["bd_rate_psnr_by_run"] = {claim_key(r["test"], r["anchor"]): {k: None if math.isnan(r[k]) else round(r[k], 3)
                                                                             for k in every}
                                          for r in spread.to_dict("records")}
    atomic_write_bytes(out_dir / METRICS_JSON, (json.dumps(metrics, indent=2) + "\n").encode())
    coding, method = coding_table(results, eval_dir), method_table(results, eval_dir)
    (out_dir / README).write_text("\n".join(_readme(profile, results, every, overlay, md, warning, questions,
                                                     spread, coding, method)) + "\n")
    return metrics


def _readme(profile: str, results: dict, every: dict, overlay: dict, md: str, warning: list[str],
            questions: pd.DataFrame, spread: pd.DataFrame, coding: pd.DataFrame, method: pd.DataFrame) -> list[str]:
    learned = [r for v, r in results.items() if v not in ANCHORS]
    n = max((len(r.get("images", [])) for r in learned), default=0)
    machines = sorted({describe(r["machine"]) for r in learned if "machine" in r})
    few = [] if n >= FEW_IMAGES else [
        "", f"**Only {n} images**: the intervals hold for photos like these, and so few may not represent",
        "others; even rows with `*` are indications, not conclusions."]
    return [
        "# Reports",
        "",
        f"Made by the `report` stage (`dvc repro`) with profile **{profile}** at commit `{git_commit(profile)}`.",
        "Images: the held-out test split; rates are real bitstream bytes; BD-rates use pchip",
        "interpolation over the shared quality range (negative = rate saved against the anchor).",
        f"Each BD-rate is that of the mean curves, with its {LEVEL:.0%} {METHOD} over the images (chosen",
        "by simulation: docs, results); `*` marks an interval that excludes 0, and where the report",
        "compares several runs, a sign that every run with the row shares. Rows without `*` are not",
        "distinguishable from no difference on these images. `images`: how many were coded, and how many",
        "of them have a BD-rate of their own where not all do; `p`: Wilcoxon's signed-rank test on those",
        "per-image BD-rates.",
        *few,
        "",
        "Machine of the evaluations: " + ("; ".join(machines) if machines else "not recorded") + ".",
        *([] if not overlay else ["", "Dashed black on the plots, published curves: " + "; ".join(
            f"{res.get('name', 'published')} (`{path}`)" for path, res in overlay.items()) + "."]),
        "",
        *warning,
        "![PSNR](rd_psnr.png)",
        "![MS-SSIM](rd_msssim.png)",
        "",
        "## BD-rates",
        "",
        md,
        "",
        *([] if not len(coding) else [
            "## The training surrogate apart from the coding quantizer", "",
            "Each base model coded with each quantizer, BD-rate (PSNR) against the USQ-trained model coded with",
            "USQ. Along a row, the coding quantizer's effect on the same model; down a column, the training",
            "surrogate's under the same coding (the rows of the table above give each with its interval). The",
            "controls belong to the training surrogate, not to the coding quantizer.", "",
            coding.to_markdown(index=False), ""]),
        *([] if not len(method) else [
            "## The quantizer with the method", "",
            "Each quantizer against the ones before it, BD-rate (PSNR): first on USQ's base model, encoder-only",
            "(the quantizer's effect alone: its decisions meet a decoder trained on noise), then after each",
            "retraining phase on the quantizer's own latents (does retraining make its decisions pay?). RDOQ's",
            "families start from USQ's base and share USQ's controls.", "",
            method.to_markdown(index=False), ""]),
        *([] if not len(questions) else [
            "## Open questions: phase 4 on TCQ, and rounds", "",
            "Each retrained family's strategy (phase 4: `online` quantizes every batch again, `stale` keeps the",
            "dataset's indices) and round (round r retrains round r-1's models on a dataset made from them),",
            "its BD-rate (PSNR) against its base and against its control of equal steps, and its retraining",
            "wall time over all lambdas (with earlier rounds and the datasets they made):", "",
            questions.to_markdown(index=False), ""]),
        *([] if not len(spread) else [
            "## Across seeds and machines", "",
            f"BD-rate in % (PSNR, mean curves) of the claims in each of the {len(every)} runs of this recipe (other",
            "seeds, and other machines' evaluations put beside them; the anchors are shared), their mean and",
            "range, and whether every run agrees on the sign:", "",
            spread.to_markdown(index=False, floatfmt="+.2f").replace("+nan", " n/a"), ""]),
        f"Files: `bdrate.csv`, `metrics.json` (`dvc metrics show`; its `claims` are columns of `dvc exp show`),",
        f"`{CURVES}/` (the curves `dvc plots show` draws), `per_image.csv`. Measurements made by hand (timings,",
        "benchmarks, settings) are dated entries of the lab notebook, `reports/notebook/`.",
    ]
