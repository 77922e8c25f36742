"""Concurrency under DVC: queued experiments, ``dvc queue start -j 1`` against ``-j N``, side by side.

Builds a git and DVC repository of the small profile of ``bench/pipeline_concurrency.py`` (two
lambdas, USQ and TCQ, every phase), queues the same experiments twice in two fresh copies, runs
the queue with 1 worker and with ``--jobs`` workers, and prints both wall times and their ratio.
The experiments sweep the base model's lambda (``-S pretrain.base.lmbda=...``), so they share no
stage but the data and the anchors; each runs ``dvc repro`` in its own temporary workspace, and
every output lands in the one DVC cache, each experiment with its own ``dvc.lock`` (``dvc exp
show``, ``dvc exp apply``).

    python -m flows.server python bench/dvc_queue.py [--jobs 2] [--lambdas 0.013 0.0483]

(`flows.server` starts one Prefect server that every stage of every experiment reports to.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline_concurrency import ROOT, small_project

BIN = Path(sys.executable).parent


def sh(*args: str, cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONPATH=str(cwd))
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return proc.stdout


def repository(folder: Path) -> None:
    """The small profile as a git and DVC repository, with its ``dvc.yaml`` written and committed."""
    small_project(folder, {"kind": "processes", "workers": 1})
    for name in ("lic", "flows"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".gitignore").write_text("/artifacts\n/.prefect*\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                [sys.executable, "-m", "flows.stages"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@lic", "commit", "-qm", "small profile"]):
        sh(*cmd, cwd=folder)


def run(folder: Path, lambdas: list[str], jobs: int) -> float:
    """Queue one experiment per base lambda, run the queue with ``jobs`` workers; its wall time."""
    repository(folder)
    for lmbda in lambdas:
        sh("dvc", "exp", "run", "--queue", "-S", f"pretrain.base.lmbda={lmbda}", "-n", f"base-{lmbda}", cwd=folder)
    t0 = time.perf_counter()
    sh("dvc", "queue", "start", "-j", str(jobs), cwd=folder)
    while True:
        time.sleep(5)
        states = [line.split()[-1] for line in sh("dvc", "queue", "status", cwd=folder).splitlines()[1:]
                  if line.strip() and not line.startswith("Worker")]
        if not any(s in ("Queued", "Running") for s in states):
            break
    elapsed = time.perf_counter() - t0
    sh("dvc", "queue", "stop", cwd=folder)
    if states.count("Success") != len(lambdas):
        raise SystemExit(f"-j {jobs}: {sh('dvc', 'queue', 'status', cwd=folder)}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lambdas", nargs="+", default=["0.013", "0.0483"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(Path(tmp) / "one", args.lambdas, 1)
        many = run(Path(tmp) / "many", args.lambdas, args.jobs)
    print(f"dvc queue, {len(args.lambdas)} experiments of the small profile (2 lambdas, USQ and TCQ, every phase)")
    print(f"  -j 1:  {one:6.1f} s")
    print(f"  -j {args.jobs}:  {many:6.1f} s")
    print(f"  concurrent / sequential speed-up: {one / many:.2f}x")


if __name__ == "__main__":
    main()
