"""Report flow: RD curves, BD-rate tables and metrics from every evaluation."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import REPORTS, eval_dir, load_params, main
from lic.report import make_report


@task(cache_policy=NO_CACHE)  # writes an artifact: never skipped by input caching
def write_report(eval_dir: str, out_dir: str, profile: str, published: list[str], seed_dirs: dict[int, str]) -> str:
    metrics = make_report(Path(eval_dir), Path(out_dir), profile, [Path(p) for p in published],
                          {s: Path(d) for s, d in seed_dirs.items()})
    logger = get_run_logger()
    for name, value in metrics["bd_rate_psnr_percent"].items():
        logger.info("BD-rate %s: %.2f%%", name, value)
    return out_dir


@flow(name="report")
def report() -> str:
    """Writes to ``reports/<profile>/``, so each profile's results sit side by side; ``report.published``
    in ``params.yaml`` lists published curves to overlay (none by default)."""
    p = load_params()
    profile = p.get("profile", "custom")
    seeds = {int(s): str(eval_dir(int(s))) for s in p.get("seeds", [0]) if int(s)}
    return write_report(str(eval_dir()), str(REPORTS / profile), profile,
                        list(p.get("report", {}).get("published", [])), seeds)


if __name__ == "__main__":
    main(report)
