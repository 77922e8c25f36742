"""CLI exit codes: 0 on success, 2 with one line on user errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli


def _save(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def test_compress_decompress_round_trip(tmp_path: Path, tiny_ckpt: Path, photo: np.ndarray) -> None:
    src = _save(tmp_path / "in.png", photo)
    assert run_cli("compress", src, "-m", tiny_ckpt, "-o", tmp_path / "a.lic") == 0
    assert run_cli("decompress", tmp_path / "a.lic", "-m", tiny_ckpt, "-o", tmp_path / "out.png") == 0
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == photo.shape


def test_tcq_options_reach_the_header_and_decode_without_flags(tmp_path: Path, tiny_ckpt: Path,
                                                                photo: np.ndarray) -> None:
    from lic import bitstream
    from lic.quantizers.tcq import _PARAMS, LAYOUTS

    src = _save(tmp_path / "in.png", photo)
    assert run_cli("compress", src, "-m", tiny_ckpt, "-o", tmp_path / "t.lic", "--quantizer", "tcq",
                   "--tcq-states", "4", "--tcq-lambda", "0.05", "--tcq-delta", "0.75", "--tcq-layout", "channel",
                   "--tcq-weighting", "none") == 0
    header, _, _ = bitstream.unpack((tmp_path / "t.lic").read_bytes(), 1 << 24)
    delta, lmbda, states, layout, _ = _PARAMS.unpack(header.qparams)
    assert (delta, round(lmbda, 6), states, LAYOUTS[layout]) == (0.75, 0.05, 4, "channel")
    assert run_cli("decompress", tmp_path / "t.lic", "-m", tiny_ckpt, "-o", tmp_path / "t.png") == 0
    assert np.asarray(Image.open(tmp_path / "t.png")).shape == photo.shape


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_grayscale_and_rgba_inputs(tmp_path: Path, tiny_ckpt: Path, photo: np.ndarray, mode: str,
                                   capsys: pytest.CaptureFixture) -> None:
    img = Image.fromarray(photo).convert(mode)
    src = tmp_path / f"in_{mode}.png"
    img.save(src)
    assert run_cli("compress", src, "-m", tiny_ckpt, "-o", tmp_path / "a.lic") == 0
    assert run_cli("decompress", tmp_path / "a.lic", "-m", tiny_ckpt, "-o", tmp_path / "out.png") == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == photo.shape  # coded as 8-bit RGB
    assert "warning:" in capsys.readouterr().err


def test_user_errors_exit_2_with_one_line(tmp_path: Path, tiny_ckpt: Path, other_ckpt: Path, photo: np.ndarray,
                                          capsys: pytest.CaptureFixture) -> None:
    src = _save(tmp_path / "in.png", photo)
    bogus = tmp_path / "bogus.png"
    bogus.write_text("this is not an image")
    assert run_cli("compress", src, "-m", tiny_ckpt, "-o", tmp_path / "a.lic") == 0
    capsys.readouterr()
    cases = [
        ("compress", tmp_path / "missing.png", "-m", tiny_ckpt, "-o", tmp_path / "b.lic"),
        ("compress", bogus, "-m", tiny_ckpt, "-o", tmp_path / "b.lic"),
        ("compress", src, "-m", tmp_path / "missing.ckpt", "-o", tmp_path / "b.lic"),
        ("compress", src, "-m", bogus, "-o", tmp_path / "b.lic"),
        ("decompress", tmp_path / "a.lic", "-m", other_ckpt, "-o", tmp_path / "o.png"),
        ("decompress", bogus, "-m", tiny_ckpt, "-o", tmp_path / "o.png"),
        ("compress", src, "-m", tiny_ckpt, "-o", tmp_path / "b.lic", "--quantizer", "nope"),
        ("bdrate", tmp_path / "none.json", tmp_path / "none.json"),
        ("eval", "-o", tmp_path / "r.json", "--codec", "gif"),
        ("eval", "-o", tmp_path / "r.json"),
        ("train", "--lmbda", "0.01", "-o", tmp_path / "t.ckpt", "--images", tmp_path / "nowhere"),
        ("latents", "make", "-m", tiny_ckpt, "-o", tmp_path / "l.zarr", "--shard", "2/2"),
        ("latents", "make", "-m", tiny_ckpt, "-o", tmp_path / "l.zarr", "--shard", "1"),
    ]
    for args in cases:
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), (args, err)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "l.zarr").exists()


def test_bad_option_is_usage_error(capsys: pytest.CaptureFixture) -> None:
    assert run_cli("compress") == 2


def test_eval_and_bdrate(tmp_path: Path, tiny_ckpt: Path, photo: np.ndarray, capsys: pytest.CaptureFixture) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    _save(images / "a.png", photo)
    _save(images / "b.png", photo[:, ::-1].copy())
    (images / "c.png").write_bytes(b"")  # one bad image among good ones
    assert run_cli("eval", "-m", tiny_ckpt, "--images", images, "-o", tmp_path / "lic.json") == 0
    res = json.loads((tmp_path / "lic.json").read_text())
    assert set(res["results"]) >= {"psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time"}
    assert res["images"] == ["a.png", "b.png"] and "c.png" in res["failed"]
    assert "skipped c.png" in capsys.readouterr().err
    assert (tmp_path / "lic.csv").read_text().count("\n") == 3
    assert run_cli("eval", "--codec", "jpeg", "--qualities", "20,50,80", "--images", images,
                   "-o", tmp_path / "jpeg.json") == 0
    capsys.readouterr()
    assert run_cli("bdrate", tmp_path / "jpeg.json", tmp_path / "jpeg.json") == 0
    assert float(capsys.readouterr().out.strip()) == pytest.approx(0.0, abs=1e-9)


def test_console_script_runs_out_of_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lic", "bdrate", str(tmp_path / "x.json"), str(tmp_path / "y.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_cli_defaults_are_the_config_defaults() -> None:
    """Every option that sets a config field defaults to that field's default (no second literal)."""
    import dataclasses

    import typer.main

    from lic.cli import app
    from lic.config import EvaluateConfig, LatentsConfig, ModelConfig, RetrainConfig, TrainConfig

    root = typer.main.get_command(app)

    def defaults(*path: str) -> dict:
        cmd = root
        for name in path:
            cmd = cmd.commands[name]
        return {p.name: p.default for p in cmd.params if not p.required}

    checked = 0
    for path, cls in ((("train",), TrainConfig), (("retrain",), RetrainConfig), (("latents", "make"), LatentsConfig)):
        options = defaults(*path)
        for f in dataclasses.fields(cls):
            if f.name in options and f.default is not dataclasses.MISSING:
                assert options[f.name] == f.default, f"{' '.join(path)} --{f.name}"
                checked += 1
    train = defaults("train")
    assert (train["quantizer"], tuple(train["channels"])) == (ModelConfig.quantizer, (ModelConfig.N, ModelConfig.M))
    assert defaults("eval")["qualities"] == ",".join(map(str, EvaluateConfig.qualities))
    assert checked >= 16
