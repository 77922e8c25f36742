"""The README's shell blocks, as the tests that run them read them (tests/test_readme.py runs the tour,
tests/test_pipeline.py the pipeline and Prefect UI blocks in its tiny pipeline; ``make demo``, ``make
test`` and ``make zoo`` have tests of their own)."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_URL = "http://127.0.0.1:4200/api"  # where the README's `prefect server start` listens


def shell_blocks(text: str | None = None) -> list[str]:
    """The ``sh`` blocks of the README, in order."""
    text = (ROOT / "README.md").read_text() if text is None else text
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def kind(block: str) -> str:
    """``make`` (the entry points), ``ui`` (the Prefect server, in a terminal of its own), ``pipeline``
    (DVC in a pipeline's repository) or ``tour`` (lic's commands, in any folder)."""
    if re.search(r"^make (demo|test|zoo)\b", block, flags=re.M):
        return "make"
    if "prefect server start" in block:
        return "ui"
    if re.search(r"^dvc ", block, flags=re.M):
        return "pipeline"
    return "tour"


def blocks_of(name: str) -> list[str]:
    return [b for b in shell_blocks() if kind(b) == name]


def run_block(block: str, cwd: Path, env: dict[str, str], timeout: int = 1200) -> str:
    """Run one block in bash as written, stopping at the first failing command; returns its output."""
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{block}\nexit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def start_ui(block: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.Popen:
    """Start the README's UI block in the background (a terminal of its own) and wait until it answers."""
    server = subprocess.Popen(["bash", "-c", block], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{UI_URL}/health", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.kill()
    raise AssertionError(f"the README's Prefect server did not answer at {UI_URL} (exit {server.poll()})")
