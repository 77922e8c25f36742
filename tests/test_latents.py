"""Latent datasets (Zarr), their provenance, and retraining on them (phases 3 and 4, control)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

import lic.latents as latents
from conftest import run_cli
from lic.checkpoint import load_checkpoint, read_checkpoint
from lic.codec import Codec
from lic.config import LatentsConfig, RetrainConfig
from lic.errors import LicError
from lic.latents import ARRAYS, LatentDataset, encoder_fingerprint, make_latents, open_latents
from lic.retrain import retrain

SMALL = dict(cfg=LatentsConfig(patches=10, patch_size=64, chunk=4), progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path, train_images: Path) -> Path:
    return make_latents(tiny_ckpt, tmp_path_factory.mktemp("lat") / "usq.zarr", train_images, **SMALL)


def test_dataset_round_trips(dataset: Path, tiny_ckpt: Path, train_images: Path) -> None:
    group = open_latents(dataset)
    codec = Codec.from_checkpoint(tiny_ckpt)
    sampler = latents.PatchSampler.from_folder(train_images, 64, 4)
    x = sampler.sample(torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = latents._arrays(codec.model, codec.quantizer(), x, codec.model.analyze(x))
    for key in ARRAYS:
        assert np.array_equal(group[key][0:4], expected[key]), key
    assert group["x"].shape == (10, 3, 64, 64) and group["y_hat"].shape[0] == 10
    assert group.attrs["encoder_fingerprint"] == encoder_fingerprint(codec.model)
    assert group.attrs["quantizer"] == "usq" and group.attrs["complete"] is True
    ds = LatentDataset(dataset)
    y_hat, xs = ds.batch(torch.tensor([1, 0]))
    assert torch.equal(y_hat, torch.from_numpy(group["y_hat"][0:2]))
    assert torch.equal(xs, torch.from_numpy(group["x"][0:2]).float() / 255)


def test_incomplete_dataset_is_refused(tmp_path: Path, dataset: Path) -> None:
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(dataset, copy)
    zarr.open_group(copy, mode="r+").attrs["complete"] = False
    with pytest.raises(LicError, match="incomplete"):
        open_latents(copy)


def test_resume_after_interruption_gives_same_arrays(tmp_path: Path, dataset: Path, tiny_ckpt: Path,
                                                     train_images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "cut.zarr"
    real, calls = latents._arrays, []

    def dying(*args, **kwargs):  # noqa: ANN002, ANN003
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(latents, "_arrays", dying)
    with pytest.raises(KeyboardInterrupt):
        make_latents(tiny_ckpt, out, train_images, **SMALL)
    monkeypatch.setattr(latents, "_arrays", real)
    with pytest.raises(LicError, match="incomplete"):
        open_latents(out)
    with pytest.raises(LicError, match="--resume"):
        make_latents(tiny_ckpt, out, train_images, **SMALL)
    make_latents(tiny_ckpt, out, train_images, resume=True, **SMALL)
    a, b = open_latents(dataset), open_latents(out)
    for key in ARRAYS:
        assert np.array_equal(a[key][:], b[key][:]), key


def test_changed_hyper_decoder_makes_dataset_stale(tmp_path: Path, dataset: Path, tiny_ckpt: Path) -> None:
    obj = read_checkpoint(tiny_ckpt)
    obj["state_dict"]["h_s.0.weight"].view(-1)[0] += 1e-3
    from lic.checkpoint import weights_fingerprint

    obj["fingerprint"] = weights_fingerprint(obj["state_dict"])
    changed = tmp_path / "changed.ckpt"
    torch.save(obj, changed)
    with pytest.raises(LicError, match="stale"):
        retrain(RetrainConfig("decoder", steps=2), changed, dataset, tmp_path / "r.ckpt", progress=False)
    with pytest.warns(UserWarning, match="stale"):
        rec = retrain(RetrainConfig("decoder", steps=2, allow_stale=True), changed, dataset, tmp_path / "r.ckpt",
                      progress=False)
    assert rec["stale"] and "encoder+hyper fingerprint" in rec["stale"][0]
    assert json.loads((tmp_path / "r.json").read_text())["stale"] == rec["stale"]


def _decoder_mse(model: torch.nn.Module, dataset: Path) -> float:
    y_hat, x = LatentDataset(dataset).batch(torch.arange(10))
    with torch.no_grad():
        return float(torch.mean((model.g_s(y_hat) - x) ** 2))


def test_decoder_retraining(tmp_path: Path, dataset: Path, tiny_ckpt: Path, photo: np.ndarray) -> None:
    before, _ = load_checkpoint(tiny_ckpt)
    out = tmp_path / "dec.ckpt"
    retrain(RetrainConfig("decoder", steps=30, lr=1e-3, batch_size=4), tiny_ckpt, dataset, out, progress=False)
    after, _ = load_checkpoint(out)
    assert encoder_fingerprint(after) == encoder_fingerprint(before)
    assert not torch.equal(after.g_s[0].weight, before.g_s[0].weight)
    assert _decoder_mse(after, dataset) < _decoder_mse(before, dataset)
    codec = Codec.from_checkpoint(out)
    enc = codec.encode(photo, with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)


def test_hyper_decoder_and_control_retraining(tmp_path: Path, dataset: Path, tiny_ckpt: Path) -> None:
    before, _ = load_checkpoint(tiny_ckpt)
    retrain(RetrainConfig("hyper-decoder", steps=3), tiny_ckpt, dataset, tmp_path / "hd.ckpt", progress=False)
    hd, _ = load_checkpoint(tmp_path / "hd.ckpt")
    assert not torch.equal(hd.h_s[0].weight, before.h_s[0].weight)
    assert torch.equal(hd.g_a[0].weight, before.g_a[0].weight)
    rec = retrain(RetrainConfig("control", steps=3), tiny_ckpt, dataset, tmp_path / "c.ckpt", progress=False)
    assert rec["mode"] == "control" and encoder_fingerprint(load_checkpoint(tmp_path / "c.ckpt")[0]) == \
        encoder_fingerprint(before)


@pytest.mark.parametrize("kind", ["tiny_ckpt", "ctx_ckpt", "ar_ckpt"])
def test_phase_4s_control_trains_what_phase_4_trains_and_never_quantizes(tmp_path: Path, kind: str, train_images: Path,
                                                                          request: pytest.FixtureRequest,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``hyper-control`` moves exactly the parameters that ``hyper-decoder`` moves (``g_s`` and the
    entropy decoders: ``h_s``, a context model's parts), with the same loss, and never calls the real
    quantizer while it trains (its indices come from the training surrogate)."""
    from lic.quantizers import USQ

    ckpt = request.getfixturevalue(kind)
    data = make_latents(ckpt, tmp_path / "d.zarr", train_images, cfg=LatentsConfig(patches=4, patch_size=64, chunk=2),
                        progress=False)
    before = dict(load_checkpoint(ckpt)[0].named_parameters())

    def moved(mode: str) -> set[str]:
        retrain(RetrainConfig(mode, steps=2, batch_size=2, lmbda=0.01), ckpt, data, tmp_path / f"{mode}.ckpt",
                progress=False)
        after = dict(load_checkpoint(tmp_path / f"{mode}.ckpt")[0].named_parameters())
        return {n for n in before if not torch.equal(before[n], after[n])}

    phase4 = moved("hyper-decoder")
    calls = []
    real = USQ.quantize
    monkeypatch.setattr(USQ, "quantize", lambda self, *a: calls.append(1) or real(self, *a))
    control = moved("hyper-control")
    assert control == phase4 and {n.split(".")[0] for n in control} >= {"g_s", "h_s"}
    assert not calls, "the control quantized for real"
    rec = json.loads((tmp_path / "hyper-control.json").read_text())
    assert rec["mode"] == "hyper-control" and "bpp_y" in rec  # rate plus distortion, as phase 4


def test_phase4_gradients_reach_h_s_through_means_and_scales(dataset: Path, tiny_ckpt: Path) -> None:
    """``y_hat = means + k`` carries the distortion's gradient to ``means``, the likelihood of ``k``
    the rate's gradient to ``scales``; with indices chosen afresh (online) the rate's gradient
    reaches ``means`` too (the training surrogate's), with the dataset's (stale) it does not. Both
    halves of ``h_s``'s last layer (``scales, means = h_s(z_hat).chunk(2, 1)``) are checked."""
    from lic.retrain import _step

    model, _ = load_checkpoint(tiny_ckpt)
    data = LatentDataset(dataset, ("y", "indices", "z_hat", "x"))
    y, indices, z_hat, x = data.batch(torch.arange(4))
    last, M = model.h_s[-1].weight, model.M
    grads = {}
    for strategy, latent in (("online", y), ("stale", indices)):
        for lmbda in (0.0, 1.0):  # rate alone, then rate and distortion
            model.zero_grad(set_to_none=True)
            loss, metrics = _step(model, "hyper-decoder", [latent, z_hat, x], lmbda)
            assert metrics["loss"] == pytest.approx(lmbda * 255**2 * metrics["mse"] + metrics["bpp_y"])
            loss.backward()
            grads[strategy, lmbda] = last.grad.clone()
    assert grads["online", 0.0][:M].abs().sum() > 0 and grads["online", 0.0][M:].abs().sum() > 0
    assert grads["stale", 0.0][:M].abs().sum() > 0 and grads["stale", 0.0][M:].abs().sum() == 0
    assert grads["stale", 1.0][M:].abs().sum() > 0  # the distortion reaches the means


def test_tcq_dataset_and_cli(tmp_path: Path, dataset: Path, tiny_ckpt: Path, train_images: Path,
                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tcq.zarr"
    assert run_cli("latents", "make", "-m", tiny_ckpt, "--quantizer", "tcq", "--patches", "8", "--patch-size", "64",
                   "--chunk", "4", "--images", train_images, "-o", out) == 0
    capsys.readouterr()
    assert run_cli("datasets", "show", out) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["provenance"]["quantizer"] == "tcq" and 0 <= shown["indices"]["zero_fraction"] <= 1
    assert run_cli("datasets", "diff", dataset, out) == 0
    d = json.loads(capsys.readouterr().out)
    assert "quantizer" in d["provenance_changed"] and "patches" in d["provenance_changed"]
    assert run_cli("retrain", "decoder", "-m", tiny_ckpt, "--latents", out, "--steps", "2",
                   "-o", tmp_path / "t.ckpt") == 0
    assert run_cli("retrain", "hyper-decoder", "-m", tiny_ckpt, "--latents", out, "--steps", "2",
                   "-o", tmp_path / "t2.ckpt") == 0
