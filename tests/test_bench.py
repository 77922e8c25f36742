"""Benchmarks at a tiny size: they run, and print the line their docs quote."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lic.bdrate import Interval

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


def load_bench(name: str):
    """A benchmark script as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lambda_check_compares_the_derived_lambda_with_the_interval_of_the_sweeps_best() -> None:
    check = load_bench("quantizers").lambda_check

    def ci(value: float, low: float, high: float) -> Interval:
        return Interval(value, low, high, {}, 0)

    rows = {"rdoq x1": ci(5.0, 1.0, 9.0), "rdoq x0.25": ci(2.0, -1.0, 4.5), "tcq": ci(-20.0, -30.0, -10.0)}
    assert check(rows) == ("rdoq search lambda: derived (x1) +5.00%, the sweep's best x0.25 +2.00% [-1.00, +4.50]: "
                           "the derived lambda is outside the best's interval")
    rows["rdoq x0.25"] = ci(2.0, -1.0, 5.5)
    assert check(rows).endswith("is inside the best's interval")
    assert check({"rdoq x1": ci(-3.0, -4.0, -2.0), "rdoq x2": ci(1.0, 0.0, 2.0)}).startswith(
        "rdoq search lambda: derived (x1) -3.00%, the sweep's best x1 ")


def test_the_quantizer_benchmark_sweeps_rdoq_on_patches_of_training_photos(tmp_path: Path, train_images: Path,
                                                                           test_images: Path) -> None:
    """Two rate points, two photos cut into 64x64 patches: the sweep's table and its verdict line."""
    from lic.train import train

    from tests.conftest import TINY, TINY_TRAIN

    low, high = tmp_path / "low.ckpt", tmp_path / "high.ckpt"  # far apart: 20 steps give a rising curve
    train(TINY, dataclasses.replace(TINY_TRAIN, lmbda=0.0005), train_images, low, progress=False)
    train(TINY, dataclasses.replace(TINY_TRAIN, lmbda=0.2), train_images, high, progress=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee", "rocket"):
        rgb = np.asarray(Image.open(test_images / f"{name}.png").convert("RGB"))
        Image.fromarray(rgb[:64, :160]).save(photos / f"{name}.png")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "quantizers.py"), "--model", str(low), "--model",
                           str(high), "--images", str(photos), "--patches", "64", "--scales", "0.25"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("2 models, 4 64x64 patches of "), lines[0]  # 2 per photo; the remainder dropped
    assert [line.split(" |")[0] for line in lines if line.startswith("| rdoq")] == ["| rdoq x1", "| rdoq x0.25"]
    assert re.fullmatch(r"rdoq search lambda: derived \(x1\) [-+]\d+\.\d\d%, the sweep's best x(1|0\.25) .*: the "
                        r"derived lambda is (inside|outside) the best's interval", lines[-1]), lines[-1]


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
