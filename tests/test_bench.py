"""Benchmarks at a tiny size: they run, and print the line their docs quote."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
