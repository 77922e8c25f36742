"""The Python API page runs: every ```python block of ``docs/api.md``, in order and in one namespace,
in a folder that holds tiny stand-ins for the files the page names (``q1.ckpt``, ``q3.ckpt``, the
bundled test photos, ``jpeg.json``, ``q3.zarr``)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from lic.config import LatentsConfig, TrainConfig
from lic.data import list_images
from lic.evaluate import evaluate_codec
from lic.latents import make_latents
from lic.train import train

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PHOTOS = ("china", "coffee", "rocket")  # of the bundled test split; the page codes coffee.png


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text: (line of the block's first code line, code)."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)]


def run_blocks(blocks: list[tuple[int, str]], source: str = str(DOC)) -> dict:
    """Run the blocks in order in one namespace; a traceback names the doc's own line numbers."""
    namespace: dict = {"__name__": "__api_doc__"}
    for line, code in blocks:
        exec(compile("\n" * (line - 1) + code, source, "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path, train_images: Path,
            test_images: Path) -> Path:
    """Tiny stand-ins: q1 trained 2 steps from scratch, q3 2 steps on from ``tiny_ckpt`` (so that q3 has
    both the higher rate and the higher PSNR, and the curves rise), photos cropped to 64x96, a JPEG
    sweep, and a dataset of 4 TCQ patches."""
    root = tmp_path_factory.mktemp("api")
    steps = TrainConfig(lmbda=0.0018, steps=2, batch_size=2, patch_size=64, checkpoint_every=2, seed=0)
    train(TINY, steps, train_images, root / "q1.ckpt", progress=False)
    train(TINY, replace(steps, lmbda=0.0067), train_images, root / "q3.ckpt",
          progress=False, init=tiny_ckpt)
    photos = root / "artifacts" / "data" / "bundled-test"
    photos.mkdir(parents=True)
    for name in PHOTOS:
        rgb = np.asarray(Image.open(test_images / f"{name}.png").convert("RGB"))[:64, :96]
        Image.fromarray(rgb).save(photos / f"{name}.png")
    evaluate_codec("jpeg", list_images(photos), (10, 50, 90), progress=False).write(root / "jpeg.json")
    make_latents(root / "q3.ckpt", root / "q3.zarr", train_images, "tcq",
                 cfg=LatentsConfig(patches=4, patch_size=64, chunk=2), progress=False)
    return root


def test_the_python_api_page_runs(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    ns = run_blocks(python_blocks(DOC.read_text()))
    for written in ("usq.json", "usq.csv", "tcq.json", "tcq.csv", "rd.png"):
        assert (workdir / written).is_file(), written
    assert np.isfinite(ns["interval"].value) and ns["first"]["indices"].shape[0] == 2
    assert ns["y_hat"].shape[0] == 4 and ns["x"].max() <= 1


def test_the_page_has_its_examples_and_a_wrong_name_fails() -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 4, "docs/api.md has lost its examples"
    assert python_blocks("text\n```python\nx = 1\n```\n")[0] == (3, "x = 1\n")
    with pytest.raises(ImportError, match="Codex"):
        run_blocks([(1, "from lic.codec import Codex")])
    with pytest.raises(NameError):
        run_blocks([(1, "codec = 1"), (5, "print(codecs)")])
