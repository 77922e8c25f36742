"""Report flow: RD curves, BD-rate tables, metrics and curve data from every evaluation; its claims
as a Prefect artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import report_card
from flows.common import REPORTS, eval_dir, load_params, main
from lic.bdrate import LEVEL, METHOD
from lic.report import make_report


@task(cache_policy=NO_CACHE)  # writes an artifact: never skipped by input caching
def write_report(eval_dir: str, out_dir: str, profile: str, published: list[str], runs: dict[str, str]) -> str:
    metrics = make_report(Path(eval_dir), Path(out_dir), profile, [Path(p) for p in published],
                          {name: Path(d) for name, d in runs.items()})
    logger = get_run_logger()
    for name, value in metrics["bd_rate_psnr_percent"].items():
        logger.info("BD-rate %s: %.2f%%", name, value)
    for line in metrics["folded"]:
        logger.warning("folded curve: %s", line)
    report_card(metrics, Path(out_dir), f"{LEVEL:.0%} {METHOD}s over the images")
    return out_dir


@flow(name="report")
def report() -> str:
    """Writes to ``reports/<profile>/``, so each profile's results sit side by side. ``report`` in
    ``params.yaml``: ``published`` lists published curves to overlay (none by default); ``runs``
    names folders of other machines' evaluations of the same recipe, put beside this run's seeds in
    the table of claims across runs."""
    p = load_params()
    profile = p.get("profile", "custom")
    section = p.get("report") or {}
    runs = {f"seed {s}": str(eval_dir(int(s))) for s in p.get("seeds", [0]) if int(s)}
    runs |= {str(name): str(folder) for name, folder in (section.get("runs") or {}).items()}
    published = list(section.get("published", []))
    anchor = REPORTS / "anchors" / f"compressai-{(p.get('zoo') or {}).get('architecture')}-kodak.json"
    if "zoo" in p and p["data"]["test_images"] == "kodak" and anchor.is_file() and str(anchor) not in published:
        published.append(str(anchor))  # CompressAI's published curve of the zoo's models
    return write_report(str(eval_dir()), str(REPORTS / profile), profile, published, runs)


if __name__ == "__main__":
    main(report)
