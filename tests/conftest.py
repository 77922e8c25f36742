"""Shared fixtures: a tiny trained checkpoint (N=M=16, a few steps) and small test images."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lic.config import ModelConfig, TrainConfig
from lic.data import default_images
from lic.train import train

TINY = ModelConfig(N=16, M=16)
TINY_CONTEXT = ModelConfig(N=16, M=16, architecture="channel-context", slices=4)
TINY_TRAIN = TrainConfig(lmbda=0.01, steps=20, batch_size=2, patch_size=64, checkpoint_every=10, seed=0)


# A tiny profile of the whole pipeline (tests/test_pipeline*.py): every phase in seconds.
TINY_PARAMS = {
    "profile": "tiny",
    "data": {"train_images": "tiny/train", "test_images": "tiny/test"},
    "model": {"N": 16, "M": 16},
    "lmbdas": {"q2": 0.0035, "q6": 0.0483},
    "quantizers": ["usq", "tcq", "rdoq"],  # RDOQ codes USQ's models: its latents, phases 3-4 and evaluations
    "seeds": [0],  # a second seed's stages: tests/test_stages.py; its run and report: tests/test_pipeline.py
    "pretrain": {"recipe": {"batch_size": 2, "patch_size": 64, "checkpoint_every": 2},
                 "base": {"lmbda": 0.013, "steps": 4, "lr": 0.001}, "finetune": {"steps": 2, "lr": 0.0005}},
    "tcq": {"train": {"delta": 0.5, "perturbation": "switch"},
            "code": {"states": 8, "lambda_tcq": 0.1, "layout": "row", "weighting": "decoder"}},
    "latents": {"patches": 4, "patch_size": 64, "chunk": 2},
    "retrain": {"steps": 2, "batch_size": 2, "lr": 0.0001},
    "evaluate": {"codecs": ["jpeg"], "qualities": [30, 70], "coding": ["usq", "rdoq"]},
}


def write_tiny_photos(root: Path, test_images: Path) -> None:
    """``root/tiny/{train,test}``: 192x192 crops of bundled photos, as ``TINY_PARAMS`` reads them."""
    for split, names in (("train", ["coffee", "rocket"]), ("test", ["china", "coffee"])):
        (root / "tiny" / split).mkdir(parents=True)
        for name in names:
            img = np.asarray(Image.open(test_images / f"{name}.png").convert("RGB"))[:192, :192]
            Image.fromarray(img).save(root / "tiny" / split / f"{name}.png")


@pytest.fixture(scope="session")
def train_images() -> Path:
    return default_images("train")


@pytest.fixture(scope="session")
def test_images() -> Path:
    return default_images("test")


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    train(TINY, TINY_TRAIN, train_images, out, progress=False)
    return out


@pytest.fixture(scope="session")
def ctx_ckpt(tmp_path_factory: pytest.TempPathFactory, train_images: Path, tiny_ckpt: Path) -> Path:
    """A channel-context model of 4 slices, trained on from ``tiny_ckpt`` (its context transforms from zero)."""
    out = tmp_path_factory.mktemp("ckpt") / "ctx.ckpt"
    train(TINY_CONTEXT, TINY_TRAIN, train_images, out, progress=False, init=tiny_ckpt)
    return out


@pytest.fixture(scope="session")
def ar_ckpt(tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    """A spatial context model (CompressAI's mbt2018 class, N=M=16), trained for a few steps."""
    out = tmp_path_factory.mktemp("ckpt") / "ar.ckpt"
    train(ModelConfig(N=16, M=16, architecture="mbt2018"), TINY_TRAIN, train_images, out, progress=False)
    return out


@pytest.fixture(scope="session")
def other_ckpt(tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    """Same architecture, different seed: a checkpoint that does not match ``tiny_ckpt``."""
    out = tmp_path_factory.mktemp("ckpt") / "other.ckpt"
    cfg = TrainConfig(**{**TINY_TRAIN.__dict__, "steps": 2, "seed": 1})
    train(TINY, cfg, train_images, out, progress=False)
    return out


@pytest.fixture
def photo(test_images: Path) -> np.ndarray:
    """A real photo crop with a size that is not a multiple of 64."""
    return np.asarray(Image.open(test_images / "rocket.png").convert("RGB"))[:150, :203].copy()


def as_version_1(data: bytes) -> bytes:
    """A ``.lic`` stream of a mean-scale hyperprior written as format 1 wrote it: no model field."""
    from lic import bitstream

    assert data[4] == 3 and data[6:10] == bitstream.HEAD.pack(b"", 0, 0, bitstream.model_id("mean-scale-hyperprior"),
                                                              b"", 0, 0)[6:10]
    body = data[:4] + b"\x01" + data[5:6] + data[10:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def run_cli(*args: str) -> int:
    """Run ``lic ARGS`` in-process; returns the exit code."""
    from lic.cli import main

    old = sys.argv
    sys.argv = ["lic", *map(str, args)]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One temporary Prefect server for the session (its URL); flows in subprocesses use it too."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()
