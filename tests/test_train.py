"""Training: it learns, it resumes exactly, checkpoints load safely."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from conftest import TINY, TINY_TRAIN
from lic.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lic.config import ModelConfig
from lic.errors import LicError
from lic.train import train


def test_resume_after_interruption_gives_identical_weights(tmp_path: Path, train_images: Path) -> None:
    full = tmp_path / "full.ckpt"
    train(TINY, TINY_TRAIN, train_images, full, progress=False)

    cut = tmp_path / "cut.ckpt"

    def stop_at_13(step: int, _: dict) -> None:
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY, TINY_TRAIN, train_images, cut, on_log=stop_at_13, log_every=1, progress=False)
    assert read_checkpoint(cut)["train_state"]["step"] == 13
    train(TINY, TINY_TRAIN, train_images, cut, resume=True, progress=False)

    a, b = read_checkpoint(full), read_checkpoint(cut)
    assert a["fingerprint"] == b["fingerprint"]
    assert b["train_state"]["step"] == TINY_TRAIN.steps


def test_existing_output_needs_resume(tmp_path: Path, tiny_ckpt: Path, train_images: Path) -> None:
    with pytest.raises(LicError, match="--resume"):
        train(TINY, TINY_TRAIN, train_images, tiny_ckpt, progress=False)


def test_resume_refuses_changed_recipe(tiny_ckpt: Path, train_images: Path) -> None:
    from dataclasses import replace

    with pytest.raises(LicError, match="lmbda"):
        train(TINY, replace(TINY_TRAIN, lmbda=0.5), train_images, tiny_ckpt, resume=True, progress=False)


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "pwned",))

    bad = tmp_path / "evil.ckpt"
    torch.save({"format": "lic-checkpoint", "x": Evil()}, bad, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(LicError, match="refused"):
        load_checkpoint(bad)
    assert not (tmp_path / "pwned").exists()


def test_config_that_does_not_match_weights_is_refused(tmp_path: Path, tiny_ckpt: Path) -> None:
    obj = read_checkpoint(tiny_ckpt)
    obj["config"] = ModelConfig(N=16, M=24).to_dict()
    bad = tmp_path / "mismatch.ckpt"
    torch.save(obj, bad)
    with pytest.raises(LicError, match="do not match config"):
        load_checkpoint(bad)


def test_tampered_weights_are_detected(tmp_path: Path, tiny_ckpt: Path) -> None:
    obj = read_checkpoint(tiny_ckpt)
    obj["state_dict"]["g_s.0.weight"][0, 0, 0, 0] += 1.0
    bad = tmp_path / "tampered.ckpt"
    torch.save(obj, bad)
    with pytest.raises(LicError, match="fingerprint"):
        load_checkpoint(bad)


def test_saved_model_codes_without_anything_else(tmp_path: Path, tiny_ckpt: Path) -> None:
    model, obj = load_checkpoint(tiny_ckpt)
    assert obj["config"] == TINY.to_dict()
    assert model.gaussian_conditional._quantized_cdf.numel() > 0
    out = tmp_path / "copy.ckpt"
    assert save_checkpoint(out, model) == obj["fingerprint"]


def test_fine_tuning_starts_from_the_base_weights(tmp_path: Path, tiny_ckpt: Path, train_images: Path) -> None:
    from dataclasses import replace

    cfg = replace(TINY_TRAIN, steps=1, lr=1e-12, lmbda=0.05)  # one step that barely moves the weights
    out = tmp_path / "ft.ckpt"
    train(TINY, cfg, train_images, out, progress=False, init=tiny_ckpt)
    base, _ = load_checkpoint(tiny_ckpt)
    tuned, obj = load_checkpoint(out)
    assert obj["train_state"]["init"] == str(tiny_ckpt)
    assert torch.allclose(tuned.g_a[0].weight, base.g_a[0].weight, atol=1e-6)
    with pytest.raises(LicError, match="N=16, M=16"):
        train(ModelConfig(N=16, M=24), cfg, train_images, tmp_path / "bad.ckpt", progress=False, init=tiny_ckpt)


def test_two_trainings_in_separate_processes_give_the_same_weights(tmp_path: Path, train_images: Path) -> None:
    """On one machine with one environment training is deterministic: what a report's reruns rest on."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "lic", "train", "--lmbda", "0.01", "--steps", "6", "--channels", "16", "16",
            "--patch-size", "64", "--batch-size", "2", "--min-scale", "0.5", "--images", str(train_images)]
    for name in ("a", "b"):
        subprocess.run(args + ["-o", str(tmp_path / f"{name}.ckpt")], check=True, capture_output=True)
    a, b = (read_checkpoint(tmp_path / f"{n}.ckpt")["fingerprint"] for n in ("a", "b"))
    assert a == b


def test_records_carry_the_machine(tmp_path: Path, tiny_ckpt: Path, test_images: Path, train_images: Path) -> None:
    """Checkpoints, latent datasets and evaluations record what shapes their numbers besides the code."""
    from lic.config import LatentsConfig
    from lic.data import list_images
    from lic.evaluate import evaluate_checkpoints
    from lic.latents import make_latents, open_latents
    from lic.machine import describe

    for record in (read_checkpoint(tiny_ckpt)["machine"],
                   evaluate_checkpoints([tiny_ckpt], list_images(test_images)[:1], progress=False).to_json()["machine"],
                   dict(open_latents(make_latents(tiny_ckpt, tmp_path / "d.zarr", train_images, progress=False,
                                                  cfg=LatentsConfig(patches=2, patch_size=64, chunk=2))).attrs)["machine"]):
        assert record["packages"]["torch"] == torch.__version__ and record["packages"]["Pillow"]
        assert record["torch_threads"] >= 1 and isinstance(record["cpu"]["isa"], list) and record["cpu"]["model"]
        assert record["torch_cpu_kernels"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "NO AVX", "SVE256", "SVE")
        assert "torch threads" in describe(record)
