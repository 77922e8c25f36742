"""What the Prefect UI shows of a run beyond its log lines: artifacts, under keys that line up across
runs on the UI's Artifacts page (one key per artifact path, so each run adds a version).

- a training or retraining run: a progress artifact, step of total, updated as it goes;
- a latent dataset: its provenance and index statistics, and what moved against its parent round
  (:func:`flows.make_latents.dataset_card`);
- an evaluation: its RD points, as a table;
- the report: the claims' BD-rates with their intervals, and where the plots are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from flows.common import ARTIFACTS, log_progress


def key(kind: str, out: Path) -> str:
    """``<kind>-<path>``: an artifact path without ``artifacts/``, ``models/`` and the suffix, in the
    characters Prefect's keys allow (``train-tcq-base-q1``, ``latents-tcq-q1``)."""
    rel = Path(out).relative_to(ARTIFACTS) if Path(out).is_relative_to(ARTIFACTS) else Path(out)
    parts = [p for p in rel.with_suffix("").parts if p not in ("models", "latents", "eval")]
    return re.sub(r"[^a-z0-9-]+", "-", "-".join([kind, *parts]).lower()).strip("-")


def progress(kind: str, out: Path, total: int) -> Callable[[int, dict[str, float]], None]:
    """An ``on_log(step, metrics)`` for :func:`lic.train.train` and :func:`lic.retrain.retrain`: the
    log line, and the progress artifact of ``out`` at ``step / total``."""
    artifact = create_progress_artifact(0.0, key=key(kind, out), description=f"{kind} of {out}: step of {total}")
    log = log_progress(Path(out).stem)

    def on_log(step: int, metrics: dict[str, float]) -> None:
        log(step, metrics)
        update_progress_artifact(artifact, 100.0 * step / total)

    return on_log


def evaluation_table(results: dict[str, Any], out: Path) -> None:
    """An evaluation's RD points: one row per point, mean bpp, PSNR and MS-SSIM over its images."""
    r = results["results"]
    rows = [{"point": Path(str(p)).stem, "bpp": round(b, 4), "psnr_rgb": round(q, 3), "ms_ssim_rgb": round(s, 4)}
            for p, b, q, s in zip(results["points"], r["bpp"], r["psnr-rgb"], r["ms-ssim-rgb"])]
    create_table_artifact(rows, key=key("eval", out), description=f"RD points of {results['name']} "
                                                                  f"({len(results['images'])} images)")


def _claim_cell(claim: dict[str, float], metric: str) -> str:
    """A claim's ``value [low, high]`` in one metric (as ``metrics.json`` holds it), or what it lacks."""
    if metric not in claim:
        return "n/a"
    if f"{metric}_low" not in claim:
        return f"{claim[metric]:+.2f} [no interval]"
    return f"{claim[metric]:+.2f} [{claim[metric + '_low']:+.2f}, {claim[metric + '_high']:+.2f}]"


def report_card(metrics: dict[str, Any], out_dir: Path, intervals: str) -> None:
    """The report's claims with their intervals (PSNR and MS-SSIM BD-rates; ``intervals`` says which),
    and where its plots are."""
    lines = [f"# Report: profile {metrics['profile']}", "", f"Files in `{out_dir}`: `rd_psnr.png`, `rd_msssim.png`, "
             "`bdrate.md`, `curves/` (`dvc plots show`).", ""]
    if metrics.get("folded"):
        lines += ["**Folded curves** (no BD-rate against them):", *[f"- {f}" for f in metrics["folded"]], ""]
    lines += ["| claim | BD-rate PSNR % | BD-rate MS-SSIM % |", "|---|---|---|"]
    for name, v in metrics["claims"].items():
        lines.append(f"| {name} | {_claim_cell(v, 'psnr')} | {_claim_cell(v, 'ms_ssim')} |")
    create_markdown_artifact("\n".join(lines), key=f"report-{metrics['profile']}".lower(),
                             description=f"BD-rates of the claims with {intervals}")
