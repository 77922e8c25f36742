"""Benchmarks at a tiny size: they run, and print the line their docs quote."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_quantizer_benchmark_ends_on_its_summary_line() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "quantizers.py"), "--samples", "320", "--lambdas",
                           "0", "0.2", "--delta", "0.5", "0.75"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    number = r"-?\d+\.\d\d"
    assert re.fullmatch(rf"gaussian: gap to R\(D\) at 1/2/3 bits per element: tcq {number}/{number}/{number} dB, "
                        rf"rdoq {number}/{number}/{number} dB; tcq rate against rdoq at SNR 1-16 dB: "
                        r"-?\d+\.\d% to -?\d+\.\d%", lines[-1]), lines[-1]
    assert any(line.startswith("| 0.75 |") for line in lines)  # the delta sweep's row


RATIO = r"\d+\.\d+x"
TINY = {  # each benchmark at a tiny size, and a line it must print (its ratio)
    "tcq_online.py": (["--channels", "8", "8", "--patch", "64", "--batch", "2", "--steps", "2", "--repeats", "1"],
                      rf"  online costs {RATIO} stale per step"),
    "latents_shards.py": (["--patches", "4"], rf"  scaling 2 workers / 1 worker: {RATIO}; groups equal: True"),
    "latents_speed.py": (["--patches", "4", "--patch-size", "64", "--batch-size", "2", "--steps", "2"],
                         rf"loader: .* ratio \d+\.\dx \(batch 2, 64px\)"),
    "tcq_speed.py": (["--repeats", "1"], r"encode: rdoq .* ms, ratio to usq \d+\.\d{3}; tcq with fitted tables "
                                         r".* ms, ratio to tcq \d+\.\d{3}"),
    "context_speed.py": (["--repeats", "1"], rf"  tcq decode: hyperprior .* ratio {RATIO}"),
    "codec_speed.py": (["--architecture", "bmshj2018-hyperprior", "--repeats", "1"],
                       r"bmshj2018-hyperprior: bytes lic \d+ .* decode lic .* ratio \d+\.\d{3}"),
    "estimate_rates.py": (["--steps", "2"], r"coding \(encode \+ decode\), N=128 M=192: \d+\.\d\d s per megapixel"),
}


@pytest.mark.parametrize("script", sorted(TINY))
def test_each_benchmark_runs_at_a_tiny_size_and_prints_its_ratio(script: str) -> None:
    args, line = TINY[script]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(re.fullmatch(line, x) for x in proc.stdout.splitlines()), proc.stdout


def test_every_benchmark_has_a_smoke_test_and_every_experiment_answers_help() -> None:
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - {"common.py"}
    # the two that run whole pipelines twice; the pipelines themselves are tested (test_pipeline_flow, test_pipeline)
    assert scripts - set(TINY) == {"quantizers.py", "pipeline_concurrency.py", "dvc_queue.py"}
    helps = "\n".join(  # in one process: runpy runs each as python runs a script
        f"sys.argv = [{str(p)!r}, '--help']\ntry:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        f"except SystemExit as e:\n    assert e.code in (0, None), sys.argv[0]\nprint('ran', {p.name!r})"
        for p in sorted((ROOT / "experiments").glob("*.py")))
    proc = subprocess.run([sys.executable, "-c", "import runpy, sys\n" + helps], capture_output=True, text=True,
                          timeout=300, cwd=ROOT / "experiments")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("usage:") == proc.stdout.count("ran ") == len(list((ROOT / "experiments").glob("*.py")))
    for p in sorted((ROOT / "experiments").glob("*.sh")):
        assert subprocess.run(["bash", "-n", str(p)]).returncode == 0, p.name
