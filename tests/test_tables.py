"""Entropy tables fitted to a quantizer's decisions (lic.tables) on a Gaussian source: fewer real
bytes on another draw, exact decoding, and a digest that tells fits apart."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_TRAIN
from lic.config import ModelConfig
from lic.errors import LicError
from lic.models import Hyperprior
from lic.quantizers import make_quantizer, quantizer_from_header
from lic.tables import fit


@pytest.fixture(scope="module")
def conditional():  # noqa: ANN201
    model = Hyperprior(ModelConfig(N=8, M=8))
    model.update(force=True)
    return model.gaussian_conditional


def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residuals ``N(0, sigma^2)``, ``sigma`` from 0.2 to 3 by rows, zero means."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.2, 3.0, 24).reshape(1, 1, 24, 1).expand(1, 1, 24, 160).contiguous()
    return scales * torch.randn(scales.shape, generator=gen), torch.zeros_like(scales), scales


@pytest.mark.parametrize("name, params", [("tcq", {"lambda_tcq": 0.2}), ("rdoq", {"lambda_rdoq": 0.3})])
def test_tables_fitted_on_one_draw_code_another_in_fewer_bytes_and_decode_exactly(conditional, name: str,
                                                                                  params: dict) -> None:  # noqa: ANN001
    q = make_quantizer(name, conditional, weighting="none", **params)
    fitted = fit(q, *draw(0))
    y, means, scales = draw(1)
    analytic_k, fitted_k = q.quantize(y, means, scales), fitted.quantize(y, means, scales)
    analytic_bytes, fitted_bytes = q.encode(analytic_k, scales), fitted.encode(fitted_k, scales)
    assert len(fitted_bytes) < len(analytic_bytes)
    assert torch.equal(fitted.decode(fitted_bytes, scales), fitted_k)
    d = [float(((x.dequantize(k, means) - y) ** 2).mean()) for x, k in ((q, analytic_k), (fitted, fitted_k))]
    assert d[1] < 1.5 * d[0]  # the bytes are not saved by a much coarser reconstruction


def test_a_tcq_header_names_its_tables(conditional) -> None:  # noqa: ANN001
    """Fits on other data give other digests, and a header of fitted tables is refused by a decoder
    that has only the analytic ones, in one line."""
    q = make_quantizer("tcq", conditional, lambda_tcq=0.2, weighting="none")
    a, b = fit(q, *draw(0)), fit(q, *draw(5))
    digests = {x.pack_params()[-4:] for x in (q, a, b)}
    assert len(digests) == 3
    with pytest.raises(LicError, match="tables differ"):
        quantizer_from_header(a.code, a.pack_params(), conditional)


@pytest.fixture(scope="module")
def fitted_ckpts(tiny_ckpt, tmp_path_factory, train_images):  # noqa: ANN001, ANN201
    """The tiny model with tables fitted for TCQ and RDOQ (``lic tables fit``), and a second RDOQ fit on
    other images."""
    from conftest import run_cli

    out = tmp_path_factory.mktemp("fitted")
    assert run_cli("tables", "fit", "-m", tiny_ckpt, "-o", out / "tcq.ckpt", "--quantizer", "tcq", "--tcq-lambda",
                   "0.1", "--images", train_images, "--max-images", "2", "--rounds", "2") == 0
    assert run_cli("tables", "fit", "-m", out / "tcq.ckpt", "-o", out / "both.ckpt", "--quantizer", "rdoq",
                   "--images", train_images, "--max-images", "2", "--rounds", "2") == 0
    from lic.refit import fit_checkpoint

    other = out / "other"
    other.mkdir()
    for f in sorted(train_images.glob("*.png"))[2:4]:
        (other / f.name).write_bytes(f.read_bytes())
    fit_checkpoint(tiny_ckpt, out / "other.ckpt", "rdoq", {}, other, rounds=2, progress=False)
    return out


@pytest.mark.parametrize("name", ["tcq", "rdoq"])
def test_a_models_fitted_tables_code_its_streams_which_decode_exactly(fitted_ckpts, tiny_ckpt, photo,  # noqa: ANN001
                                                                      name: str) -> None:
    import numpy as np

    from lic import bitstream
    from lic.codec import Codec

    codec = Codec.from_checkpoint(fitted_ckpts / "both.ckpt")
    assert sorted(codec.model.fitted_tables) == ["rdoq", "tcq"]
    params = {"lambda_tcq": 0.1} if name == "tcq" else {}
    q, control = codec.quantizer(name, **params), codec.quantizer(name, tables="analytic", **params)
    assert q.fitted and not control.fitted
    other = {"lambda_tcq": 0.05} if name == "tcq" else {"lambda_rdoq": 0.5}
    assert not codec.quantizer(name, **other).fitted  # fitted for other parameters: not used
    enc = codec.encode(photo, q, with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    header = bitstream.unpack(enc.data, 10**8)[0]
    assert header.qparams != control.pack_params()
    plain = codec.encode(photo, control, with_recon=True)  # the control still decodes, with the same checkpoint
    assert np.array_equal(codec.decode(plain.data), plain.recon)
    for other in (tiny_ckpt, *([fitted_ckpts / "other.ckpt"] if name == "rdoq" else [])):
        theirs = Codec.from_checkpoint(other)
        with pytest.raises(LicError, match="stream was made with model"):  # the fingerprint covers the tables
            theirs.decode(enc.data)
        with pytest.raises(LicError, match="tables differ from the encoder's"):  # and the header names them
            quantizer_from_header(header.quantizer, header.qparams, theirs.model.gaussian_conditional,
                                  [f.apply for f in theirs.model.fitted_tables.values()])


def test_fitted_tables_make_older_datasets_stale_and_phase_4_drops_them(fitted_ckpts, tiny_ckpt, tmp_path,  # noqa: ANN001
                                                                      train_images) -> None:  # noqa: ANN001
    from lic.checkpoint import load_checkpoint
    from lic.config import LatentsConfig, RetrainConfig
    from lic.latents import make_latents
    from lic.retrain import retrain

    dataset = make_latents(tiny_ckpt, tmp_path / "d.zarr", train_images, "rdoq",
                           cfg=LatentsConfig(patches=2, patch_size=64, chunk=2), progress=False)
    with pytest.raises(LicError, match="stale"):
        retrain(RetrainConfig("decoder", steps=1, batch_size=2), fitted_ckpts / "both.ckpt", dataset,
                tmp_path / "r.ckpt", progress=False)
    fresh = make_latents(fitted_ckpts / "both.ckpt", tmp_path / "f.zarr", train_images, "rdoq",
                         cfg=LatentsConfig(patches=2, patch_size=64, chunk=2), progress=False)
    for mode, kept in (("decoder", ["rdoq", "tcq"]), ("hyper-decoder", [])):
        retrain(RetrainConfig(mode, steps=1, batch_size=2), fitted_ckpts / "both.ckpt", fresh, tmp_path / f"{mode}.ckpt",
                progress=False)
        model, obj = load_checkpoint(tmp_path / f"{mode}.ckpt")
        assert sorted(model.fitted_tables) == kept and model.lmbda == TINY_TRAIN.lmbda


def test_fitting_refuses_bad_input_in_one_line(tiny_ckpt, tmp_path, capsys) -> None:  # noqa: ANN001
    from conftest import run_cli

    (tmp_path / "empty").mkdir()
    for args, words in (((tmp_path / "empty",), "no image files"), ((tmp_path / "none",), "no such")):
        assert run_cli("tables", "fit", "-m", tiny_ckpt, "-o", tmp_path / "x.ckpt", "--quantizer", "tcq",
                       "--images", *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x.ckpt").exists()
