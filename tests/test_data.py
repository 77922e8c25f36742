"""Default data set, image loading and conversions, training patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic.data import DEFAULT_SOURCES, PatchSampler, list_images, load_image
from lic.errors import LicError


def test_default_split_is_fixed_and_disjoint(train_images: Path, test_images: Path) -> None:
    train = {p.stem for p in list_images(train_images)}
    test = {p.stem for p in list_images(test_images)}
    assert not train & test
    assert train | test == {s[2] for s in DEFAULT_SOURCES}
    assert test == {name for *_, name, split in DEFAULT_SOURCES if split == "test"}
    assert {"coffee", "rocket", "china", "aero", "ascent", "luispedro", "pygame_camera"} <= test


def test_a_photo_that_changed_split_leaves_its_old_folder(tmp_path: Path) -> None:
    from lic.data import prepare_default_dataset

    (tmp_path / "bundled-train").mkdir()
    (tmp_path / "bundled-train" / "coffee.png").write_bytes(b"from an older split")
    prepare_default_dataset(tmp_path)
    assert not (tmp_path / "bundled-train" / "coffee.png").exists()
    assert (tmp_path / "bundled-test" / "coffee.png").is_file()


@pytest.mark.parametrize(
    "mode,note",
    [("L", "converted"), ("P", "converted"), ("RGBA", "alpha"), ("CMYK", "CMYK"), ("I;16", "8-bit")],
)
def test_modes_become_rgb8(tmp_path: Path, photo: np.ndarray, mode: str, note: str) -> None:
    img = Image.fromarray(photo)
    if mode == "I;16":
        gray = np.asarray(img.convert("L")).astype(np.uint16) * 257
        img = Image.fromarray(gray)
        assert img.mode.startswith("I;16")
        path = tmp_path / "x.png"
    else:
        img = img.convert(mode)
        path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    rgb, notes = load_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == photo.shape
    assert any(note in n for n in notes), notes
    if mode == "I;16":
        assert np.array_equal(rgb[..., 0], np.asarray(Image.fromarray(photo).convert("L")))


def test_jpeg_named_png_is_read_with_a_note(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "really_jpeg.png"
    Image.fromarray(photo).save(path, format="JPEG")
    rgb, notes = load_image(path)
    assert rgb.shape == photo.shape and any("JPEG" in n for n in notes)


def test_bad_files_are_clear_errors(tmp_path: Path, photo: np.ndarray) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(photo).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:200])
    for name, match in [("empty.png", "empty"), ("text.png", "not a readable"), ("trunc.png", "cannot decode"),
                        ("missing.png", "no such file")]:
        with pytest.raises(LicError, match=match):
            load_image(tmp_path / name)
    with pytest.raises(LicError, match="above the limit"):
        load_image(good, limit=100)


def test_patches_are_reproducible(train_images: Path) -> None:
    sampler = PatchSampler.from_folder(train_images, 64, 4)
    a = sampler.sample(torch.Generator().manual_seed(3))
    b = sampler.sample(torch.Generator().manual_seed(3))
    assert a.shape == (4, 3, 64, 64) and torch.equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


def test_scale_augmentation_zooms_out_reproducibly() -> None:
    # a horizontal ramp over 512 columns: a native 64-pixel crop spans 32 grey levels, a crop drawn
    # at scale s spans 32 / s of them
    ramp = torch.arange(512).div(2).to(torch.uint8).expand(3, 256, 512).contiguous()
    native = PatchSampler([ramp], 64, 16).sample(torch.Generator().manual_seed(0))
    zoomed = PatchSampler([ramp], 64, 16, min_scale=0.25).sample(torch.Generator().manual_seed(0))
    again = PatchSampler([ramp], 64, 16, min_scale=0.25).sample(torch.Generator().manual_seed(0))
    span = lambda b: (b.amax(dim=(1, 2, 3)) - b.amin(dim=(1, 2, 3))) * 255  # noqa: E731
    assert torch.equal(zoomed, again) and zoomed.shape == native.shape
    assert float(span(native).max()) < 32.5
    assert float(span(zoomed).max()) > 64 and float(span(zoomed).min()) >= 31
    with pytest.raises(LicError, match="min_scale"):
        PatchSampler([ramp], 64, 16, min_scale=0)
