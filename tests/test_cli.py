"""CLI exit codes: 0 on success, 2 with one line on user errors, never a traceback."""

from __future__ import annotations

import json
import os
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


def test_the_rdoq_lambda_reaches_the_search_of_every_coding_command(tmp_path: Path, tiny_ckpt: Path,
                                                                    photo: np.ndarray) -> None:
    """``--rdoq-lambda 0`` rounds (USQ's bytes); a large one codes fewer; a latent dataset records it."""
    import zarr

    src = _save(tmp_path / "in.png", photo)
    sizes = {}
    for name, extra in {"usq": ("--quantizer", "usq"), "0": ("--quantizer", "rdoq", "--rdoq-lambda", "0"),
                        "big": ("--quantizer", "rdoq", "--rdoq-lambda", "5")}.items():
        assert run_cli("compress", src, "-m", tiny_ckpt, "-o", tmp_path / f"{name}.lic", *extra) == 0
        sizes[name] = (tmp_path / f"{name}.lic").read_bytes()
    assert sizes["0"] == sizes["usq"] and len(sizes["big"]) < len(sizes["usq"])
    assert run_cli("latents", "make", "-m", tiny_ckpt, "-o", tmp_path / "r.zarr", "--quantizer", "rdoq",
                   "--rdoq-lambda", "0.25", "--patches", "2", "--patch-size", "64", "--chunk", "2") == 0
    assert zarr.open_group(tmp_path / "r.zarr", mode="r").attrs["quantizer_params"]["lambda_rdoq"] == 0.25


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


def test_the_cli_edges_say_what_is_wrong_in_one_line(tmp_path: Path, tiny_ckpt: Path, photo: np.ndarray,
                                                     capsys: pytest.CaptureFixture) -> None:
    """A device this machine lacks, TCQ's options on a USQ checkpoint, a folder given as an image, a
    bad choice: one line each, exit 2, in the user's words rather than a validator's."""
    src = _save(tmp_path / "in.png", photo)
    out = ("-m", tiny_ckpt, "-o", tmp_path / "b.lic")
    cases = {("compress", src, *out, "--device", "cuda:99"): "CUDA device",  # cuda:99 on a machine with GPUs too
             ("compress", src, *out, "--device", "gpu"): "is not a torch device",
             ("compress", src, *out, "--tcq-lambda", "0.1"): "the --tcq-* options need --quantizer tcq",
             ("compress", src, *out, "--quantizer", "tcq", "--rdoq-lambda", "0.1"): "--rdoq-lambda needs --quantizer rdoq",
             ("tables", "fit", *out, "--quantizer", "tcq", "--rdoq-lambda", "0.1"): "--rdoq-lambda needs --quantizer rdoq",
             ("compress", src, *out, "--quantizer", "rdoq", "--rdoq-lambda", "0.1", "--tcq-states", "4"):
                 "the --tcq-* options need --quantizer tcq",
             ("eval", "-m", tiny_ckpt, "--images", tmp_path, "-o", tmp_path / "r.json", "--tcq-states", "4"):
                 "the --tcq-* options need --quantizer tcq",
             ("compress", tmp_path, *out): "a folder, not an image",
             ("train", "--lmbda", "0.01", "-o", tmp_path / "t.ckpt", "--kind", "bogus"): "unknown model kind 'bogus'"}
    for args, words in cases.items():
        assert run_cli(*args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "Value error" not in err[0], (args, err)
    assert not (tmp_path / "b.lic").exists()


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
            if f.name in options and options[f.name] is not None and f.default is not dataclasses.MISSING:
                assert options[f.name] == f.default, f"{' '.join(path)} --{f.name}"
                checked += 1
    train = defaults("train")
    assert (train["quantizer"], tuple(train["channels"])) == (ModelConfig.quantizer, (ModelConfig.N, ModelConfig.M))
    assert defaults("eval")["qualities"] == ",".join(map(str, EvaluateConfig.qualities))
    assert train["lmbda"] is None  # required, unless --config gives the whole configuration
    assert checked >= 16


def _commands() -> list[tuple[str, ...]]:
    """Every command's path, hidden aliases aside: ``("train",)``, ``("latents", "make")``, ..."""
    import typer.main

    from lic.cli import app

    def walk(cmd, path: tuple[str, ...]) -> list[tuple[str, ...]]:  # noqa: ANN001
        subs = getattr(cmd, "commands", {})
        return [path] + [p for name, sub in subs.items() if not sub.hidden for p in walk(sub, path + (name,))]

    return walk(typer.main.get_command(app), ())


def _help(path: tuple[str, ...]) -> str:
    proc = subprocess.run([sys.executable, "-m", "lic", *path, "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "lic")
def test_every_option_has_help_and_renders_whole(path: tuple[str, ...]) -> None:
    """No empty help, no ``<bool>``, and every help text shown as written (no markup swallowed brackets)."""
    import typer.main

    from lic.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    text = "".join(_help(path).split())  # compared without whitespace: the formatter wraps lines
    assert "<bool>" not in text
    for param in cmd.params:
        help_text = getattr(param, "help", None)
        assert help_text, f"{' '.join(path)}: {param.name} has no help"
        assert "".join(help_text.split()) in text, f"{' '.join(path)}: the help of {param.name} is not shown whole"
        choices = getattr(getattr(param, "type_descriptor", None), "choices", None)
        if choices:
            assert "|".join(map(str, choices)) in text, f"{' '.join(path)}: {param.name} lists no choices"


def test_the_three_entry_points_are_one_program() -> None:
    outs = [subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
            for cmd in ([str(Path(sys.executable).parent / "lic"), "--help"], [sys.executable, "-m", "lic", "--help"],
                        [sys.executable, "-m", "lic.cli", "--help"])]
    assert all(o.returncode == 0 for o in outs) and outs[0].stdout == outs[1].stdout == outs[2].stdout
    assert "Usage: lic " in outs[0].stdout
    version = subprocess.run([sys.executable, "-m", "lic.cli", "--version"], capture_output=True, text=True)
    from lic import __version__

    assert version.stdout.strip() == f"lic {__version__}"


@pytest.mark.parametrize("path", [p for p in _commands() if p], ids=" ".join)
def test_a_bad_option_is_one_line_and_exit_code_2(path: tuple[str, ...]) -> None:
    proc = subprocess.run([sys.executable, "-m", "lic", *path, "--no-such-option"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: No such option: --no-such-option")


def test_the_old_datasets_group_still_works(tmp_path: Path) -> None:
    assert run_cli("datasets", "show", tmp_path / "none.zarr") == 2  # hidden, but there: a one-line error
    assert run_cli("latents", "show", tmp_path / "none.zarr") == 2


def test_the_command_line_offers_the_quantizers_the_library_has(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    from lic.config import QUANTIZER_CLASSES, QUANTIZER_NAMES, SHARES_SURROGATE, TRAINING_QUANTIZERS
    from lic.quantizers import quantizer_class

    assert tuple(QUANTIZER_CLASSES) == QUANTIZER_NAMES
    classes = {n: quantizer_class(n) for n in QUANTIZER_CLASSES}
    assert all(c.name == n and c.code == QUANTIZER_CLASSES[n][1] for n, c in classes.items())  # header ids
    # a quantizer that codes another's models trains with its surrogate: it inherits it
    assert all(issubclass(classes[q], classes[s]) for q, s in SHARES_SURROGATE.items())
    assert set(TRAINING_QUANTIZERS) == set(QUANTIZER_NAMES) - set(SHARES_SURROGATE)
    assert run_cli("train", "--lmbda", "0.01", "-o", tmp_path / "t.ckpt", "--quantizer", "rdoq") == 2  # trains as usq
    assert "'rdoq' is not one of 'usq', 'tcq'" in capsys.readouterr().err
