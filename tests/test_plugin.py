"""A researcher's own CompressAI model through the plug-in point, ``--kind module:Class``: from a
file outside the package it trains, codes with every quantizer and decodes exactly, makes a latent
dataset, retrains (phases 3 and 4) and goes stale; what breaks the contract is refused in one line."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from lic import bitstream
from lic.codec import Codec
from lic.config import LatentsConfig, ModelConfig, RetrainConfig
from lic.errors import LicError
from lic.models import build_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_model.py"
KIND = "my_lab_model:WideSynthesis"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs' worked example as a module of the user's own, in a folder outside the repository."""
    folder = tmp_path_factory.mktemp("lab")
    (folder / "my_lab_model.py").write_text(EXAMPLE.read_text())
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("my_lab_model", None)


@pytest.fixture(scope="module")
def own_ckpt(lab: Path, tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    out = tmp_path_factory.mktemp("own") / "own.ckpt"
    assert run_cli("train", "--kind", KIND, "--lmbda", "0.01", "--steps", "6", "--channels", "16", "16",
                   "--batch-size", "2", "--patch-size", "64", "--checkpoint-every", "6", "--images", train_images,
                   "-o", out) == 0
    return out


@pytest.mark.parametrize("quantizer", ["usq", "rdoq", "tcq"])
def test_the_users_model_codes_and_decodes_exactly(own_ckpt: Path, photo: np.ndarray, quantizer: str) -> None:
    codec = Codec.from_checkpoint(own_ckpt)
    assert type(codec.model).__name__ == "WideSynthesis" and codec.model.g_s[0].out_channels == 32
    enc = codec.encode(photo[:97, :130].copy(), codec.quantizer(quantizer), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    assert bitstream.unpack(enc.data, 10**8)[0].model == zlib.crc32(KIND.encode())


def test_streams_of_another_architecture_are_refused(own_ckpt: Path, tiny_ckpt: Path, photo: np.ndarray) -> None:
    data = Codec.from_checkpoint(tiny_ckpt).encode(photo[:64, :64].copy()).data
    with pytest.raises(LicError, match=f"made with a mean-scale-hyperprior model, but this checkpoint is a {KIND}"):
        Codec.from_checkpoint(own_ckpt).decode(data)
    theirs = Codec.from_checkpoint(own_ckpt).encode(photo[:64, :64].copy()).data
    with pytest.raises(LicError, match=r"made with another architecture \(model id [0-9a-f]{8}\), but this"):
        Codec.from_checkpoint(tiny_ckpt).decode(theirs)


def test_the_users_model_retrains_and_its_dataset_goes_stale(own_ckpt: Path, tmp_path: Path, train_images: Path) -> None:
    from lic.checkpoint import read_checkpoint, weights_fingerprint
    from lic.latents import make_latents
    from lic.retrain import retrain

    dataset = make_latents(own_ckpt, tmp_path / "d.zarr", train_images, "tcq",
                           cfg=LatentsConfig(patches=2, patch_size=64, chunk=2), progress=False)
    for mode in ("decoder", "control", "hyper-decoder", "hyper-control"):
        out = tmp_path / f"{mode}.ckpt"
        retrain(RetrainConfig(mode, steps=1, batch_size=2), own_ckpt, dataset, out, progress=False)
        assert type(Codec.from_checkpoint(out).model).__name__ == "WideSynthesis"
    obj = read_checkpoint(own_ckpt)
    obj["state_dict"]["h_s.0.weight"].view(-1)[0] += 1e-3
    obj["fingerprint"] = weights_fingerprint(obj["state_dict"])
    torch.save(obj, tmp_path / "changed.ckpt")
    with pytest.raises(LicError, match="stale"):
        retrain(RetrainConfig("decoder", steps=1, batch_size=2), tmp_path / "changed.ckpt", dataset,
                tmp_path / "r.ckpt", progress=False)


def test_compressais_own_spatial_class_through_the_plug_in_point(photo: np.ndarray) -> None:
    """CompressAI's Cheng2020Anchor, named as a user names theirs: N alone (M = N), a spatial context."""
    from lic.checkpoint import weights_fingerprint

    with pytest.raises(LicError, match="takes N alone"):
        build_model(ModelConfig(architecture="compressai.models:Cheng2020Anchor", N=16, M=8))
    torch.manual_seed(0)
    model = build_model(ModelConfig(architecture="compressai.models:Cheng2020Anchor", N=16, M=16, quantizer="tcq"))
    model.update(force=True)
    codec = Codec(model.eval(), weights_fingerprint(model.state_dict()))
    enc = codec.encode(photo[:64, :80].copy(), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    assert codec.model.quantizer.layout == "position"


@pytest.mark.parametrize("kind,match", [
    ("no_such_module:Model", "cannot import 'no_such_module'"),
    ("torch.nn:Linear", "not a CompressAI CompressionModel class"),
    ("compressai.models:Cheng2020AnchorCheckerboard", "latent_codec layout"),
    ("compressai.models:CompressionModel", "extends none of them"),
])
def test_what_breaks_the_contract_is_refused_in_one_line(kind: str, match: str, capsys, tmp_path: Path) -> None:
    with pytest.raises(LicError, match=match):
        build_model(ModelConfig(architecture=kind, N=16, M=16))
    assert run_cli("train", "--kind", kind, "--lmbda", "0.01", "--steps", "1", "-o", tmp_path / "x.ckpt") != 0
    err = capsys.readouterr().err.strip()
    assert match.split("'")[0] in err and len(err.splitlines()) == 1 and not (tmp_path / "x.ckpt").exists()


def test_the_lic_command_finds_a_module_in_the_current_folder(tmp_path: Path, train_images: Path) -> None:
    """``lic`` is a console script, which does not search the current folder: the plug-in point does."""
    import subprocess

    (tmp_path / "cwd_model.py").write_text(EXAMPLE.read_text())
    lic = Path(sys.executable).parent / "lic"
    proc = subprocess.run([str(lic), "train", "--kind", "cwd_model:WideSynthesis", "--lmbda", "0.01", "--steps", "1",
                           "--channels", "8", "8", "--batch-size", "1", "--patch-size", "64", "--images",
                           str(train_images.resolve()), "-o", "m.ckpt"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "m.ckpt").is_file()


def test_a_model_with_other_strides_is_refused(lab: Path) -> None:
    (lab / "strides_model.py").write_text(
        "from compressai.models import MeanScaleHyperprior\n"
        "class Shallow(MeanScaleHyperprior):\n"
        "    def __init__(self, N, M):\n"
        "        super().__init__(N, M)\n"
        "        self.g_a = self.g_a[:-2]\n"
        "class Needs(MeanScaleHyperprior):\n"
        "    def __init__(self, N, M, depth):\n"
        "        super().__init__(N, M)\n")
    with pytest.raises(LicError, match="g_a must map a 64x64 image to M=16 channels of 4x4"):
        build_model(ModelConfig(architecture="strides_model:Shallow", N=16, M=16))
    with pytest.raises(LicError, match="defaults for the rest; it takes N, M, depth"):
        build_model(ModelConfig(architecture="strides_model:Needs", N=16, M=16))


def test_stages_depend_on_the_users_model_source() -> None:
    """In the repository, the user's module is a code dependency of every stage that builds models."""
    import yaml

    from flows.stages import dvc_yaml
    from lic import profiles

    params = profiles.resolve("demo")
    own = yaml.safe_load(dvc_yaml({**params, "model": {**params["model"], "kind": "examples.own_model:WideSynthesis"}}))
    registered = yaml.safe_load(dvc_yaml(params))
    deps = lambda d, s: d["stages"][s].get("do", d["stages"][s])["deps"]  # noqa: E731
    assert "examples/own_model.py" in deps(own, "pretrain-base")
    assert "examples/own_model.py" not in deps(registered, "pretrain-base")


def test_compressai_weights_of_your_own_import(lab: Path, tmp_path: Path, photo: np.ndarray, capsys) -> None:
    """``lic import --weights``: a state dict of the user's class trained in CompressAI (saved as its
    example trainer does, under DDP's ``module.``) becomes a checkpoint that codes as the net does."""
    import importlib

    net = importlib.import_module("my_lab_model").WideSynthesis(16, 16)
    torch.manual_seed(1)
    for p in net.g_s.parameters():
        p.data.normal_(0, 0.1)
    net.update(force=True)
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "w.pth")
    args = ("import", "--weights", tmp_path / "w.pth", "--kind", KIND, "--channels", "16", "16")
    assert run_cli(*args, "--lmbda", "0.0067", "-o", tmp_path / "own.ckpt") == 0
    codec = Codec.from_checkpoint(tmp_path / "own.ckpt")
    assert codec.model.lmbda == 0.0067
    assert torch.equal(codec.model.g_s[0].weight, net.g_s[0].weight)
    enc = codec.encode(photo[:64, :64].copy(), codec.quantizer("rdoq"), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    capsys.readouterr()
    for bad, words in (((*args[:-2], "8", "8", "--lmbda", "0.01"), "weights do not fit"),
                       ((*args, "--lmbda", "0.01", "--quality", "3"), "--weights takes"),
                       (("import", "--quality", "3", "--kind", "mbt2018"), "go with --weights"),
                       (("import", "--weights", tmp_path / "none.pth", "--kind", KIND, "--channels", "16", "16",
                         "--lmbda", "0.01"), "no such weights file")):
        assert run_cli(*bad, "-o", tmp_path / "bad.ckpt") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "bad.ckpt").exists()
