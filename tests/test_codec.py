"""Real bitstreams: bit-exact round trips, bpp from bytes, padding, and model mismatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lic.codec import Codec
from lic.errors import LicError
from lic.models import Hyperprior


@pytest.fixture(scope="module")
def codec(tiny_ckpt: Path) -> Codec:
    return Codec.from_checkpoint(tiny_ckpt)


@pytest.mark.parametrize("size", [(1, 1), (17, 40), (64, 64), (65, 63), (150, 203)])
def test_round_trip_is_bit_exact(codec: Codec, photo: np.ndarray, size: tuple[int, int]) -> None:
    rgb = photo[: size[0], : size[1]].copy()
    enc = codec.encode(rgb, with_recon=True)
    dec = codec.decode(enc.data)
    assert dec.shape == rgb.shape and dec.dtype == np.uint8
    assert np.array_equal(dec, enc.recon)


def test_decoder_reproduces_latents(codec: Codec, photo: np.ndarray) -> None:
    from lic.codec import pad
    from lic.data import to_tensor

    x = pad(to_tensor(photo))
    with torch.inference_mode():
        out = codec.model.compress(x)
        back = codec.model.decompress(out["strings"], out["shape"])
    assert torch.equal(out["y_hat"], back["y_hat"])


def test_reconstruction_resembles_input(codec: Codec, photo: np.ndarray) -> None:
    from lic.evaluate import psnr

    enc = codec.encode(photo, with_recon=True)
    assert psnr(photo, enc.recon) > 12.0  # a 20-step model is poor, but it is not noise


def test_bpp_equals_file_size(tmp_path: Path, tiny_ckpt: Path, test_images: Path) -> None:
    from lic.data import load_image
    from lic.evaluate import evaluate_checkpoints

    from conftest import run_cli

    image = test_images / "coffee.png"
    out = tmp_path / "coffee.lic"
    assert run_cli("compress", image, "-m", tiny_ckpt, "-o", out) == 0
    h, w = load_image(image)[0].shape[:2]
    ev = evaluate_checkpoints([tiny_ckpt], [image], progress=False)
    assert ev.rows[0].bytes == out.stat().st_size
    assert ev.rows[0].bpp == pytest.approx(out.stat().st_size * 8 / (h * w), rel=0, abs=1e-12)


def test_other_checkpoint_is_refused_naming_both(codec: Codec, other_ckpt: Path, photo: np.ndarray) -> None:
    other = Codec.from_checkpoint(other_ckpt)
    data = codec.encode(photo).data
    with pytest.raises(LicError) as err:
        other.decode(data)
    assert codec.fingerprint[:16] in str(err.value) and other.fingerprint[:16] in str(err.value)


def test_untrained_tables_are_a_clear_error(photo: np.ndarray) -> None:
    from lic.config import ModelConfig

    model = Hyperprior(ModelConfig(N=8, M=8))
    with pytest.raises((LicError, ValueError)):
        Codec(model, "00" * 32).encode(photo)


def test_table_indexes_match_compressai(codec: Codec) -> None:
    table = codec.model.gaussian_conditional.scale_table
    scales = torch.cat([table, table * 0.999, table * 1.001, torch.rand(1000) * 300, torch.tensor([0.0, -1.0, 1e6])])
    scales = scales.reshape(1, 1, 1, -1)
    q = codec.model.quantizer
    assert torch.equal(q.table_indexes(scales), codec.model.gaussian_conditional.build_indexes(scales))
