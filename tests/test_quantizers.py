"""One quantizer factory: parameters round-trip, headers rebuild the same quantizer, the model
binds its decoder's sensitivity, and a decoder-weighted search without a decoder is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lic.checkpoint import load_checkpoint
from lic.config import ModelConfig
from lic.errors import LicError
from lic.models import Hyperprior
from lic.quantizers import make_quantizer, quantizer_from_header

TCQ_PARAMS = {"delta": 0.375, "lambda_tcq": 0.1, "states": 4, "layout": "channel", "perturbation": "union",
              "weighting": "none"}


@pytest.fixture(scope="module")
def model(tiny_ckpt: Path) -> Hyperprior:
    return load_checkpoint(tiny_ckpt)[0]


@pytest.fixture(scope="module")
def latent(model: Hyperprior) -> dict:
    torch.manual_seed(0)
    with torch.inference_mode():
        return model.analyze(torch.rand(1, 3, 128, 192))


@pytest.mark.parametrize("name, params", [("usq", {}), ("tcq", TCQ_PARAMS), ("tcq", {})])
def test_params_round_trip_into_the_constructor(model: Hyperprior, latent: dict, name: str, params: dict) -> None:
    q = model.quantizer_for(name, **params)
    again = make_quantizer(q.name, model.gaussian_conditional, model.decoder_sensitivity, **q.params())
    assert again.params() == q.params()
    assert {**q.params(), **params} == q.params()
    y, means, scales = latent["y"], latent["means"], latent["scales"]
    assert torch.equal(again.quantize(y, means, scales), q.quantize(y, means, scales))


@pytest.mark.parametrize("params", [{}, TCQ_PARAMS])
def test_header_rebuilds_what_the_decoder_needs(model: Hyperprior, params: dict) -> None:
    q = model.quantizer_for("tcq", **params)
    back = quantizer_from_header(q.code, q.pack_params(), model.gaussian_conditional)
    for key in ("delta", "lambda_tcq", "states", "layout"):
        assert back.params()[key] == pytest.approx(q.params()[key])
    other = model.quantizer_for("tcq", **{**params, "delta": 0.6}).pack_params()
    forged = q.pack_params()[:-4] + other[-4:]  # another delta's table digest
    with pytest.raises(LicError, match="tables differ"):
        quantizer_from_header(q.code, forged, model.gaussian_conditional)
    with pytest.raises(LicError, match="unknown quantizer id"):
        quantizer_from_header(7, b"", model.gaussian_conditional)


def test_model_defaults_come_from_the_checkpoint_then_the_quantizer(model: Hyperprior) -> None:
    cfg = ModelConfig(N=16, M=16, quantizer="tcq", quantizer_params={"delta": 0.375, "perturbation": "uniform"})
    tcq_model = Hyperprior(cfg)
    q = tcq_model.quantizer_for("tcq", lambda_tcq=0.1)
    assert (q.delta, q.perturbation, q.lambda_tcq, q.states, q.weighting) == (0.375, "uniform", 0.1, 8, "decoder")
    assert tcq_model.quantizer_for() is tcq_model.quantizer
    assert model.quantizer_for("tcq").delta == 0.5  # a USQ checkpoint's params do not leak into TCQ
    with pytest.raises(LicError, match="unknown quantizer"):
        model.quantizer_for("vq")
    with pytest.raises(LicError, match="weighting"):
        model.quantizer_for("tcq", weighting="encoder")


def test_decoder_weighting_needs_a_decoder(model: Hyperprior, latent: dict) -> None:
    q = make_quantizer("tcq", model.gaussian_conditional)
    with pytest.raises(LicError, match="needs the model's decoder"):
        q.quantize(latent["y"], latent["means"], latent["scales"])


def test_datasets_made_before_one_vocabulary_still_read(model: Hyperprior) -> None:
    assert make_quantizer("tcq", model.gaussian_conditional, weighted=True).weighting == "decoder"
    assert make_quantizer("tcq", model.gaussian_conditional, weighted=False).weighting == "none"


def test_sensitivity_is_cached_until_the_decoder_changes(tiny_ckpt: Path) -> None:
    model = load_checkpoint(tiny_ckpt)[0]
    first = model.decoder_sensitivity()
    assert model.decoder_sensitivity() is first
    assert torch.allclose(first, model.channel_sensitivity()) and float(first.mean()) == pytest.approx(1.0)
    with torch.no_grad():
        model.g_s[0].weight.mul_(torch.linspace(0.5, 2.0, model.M).reshape(-1, 1, 1, 1))
    second = model.decoder_sensitivity()
    assert second is not first and not torch.allclose(second, first)


def test_a_delta_that_float32_cannot_hold_still_decodes(model: Hyperprior, latent: dict) -> None:
    """The header carries ``delta`` in float32; the encoder's tables are built from that value too
    (a stream coded with ``--tcq-delta 0.35`` was refused by its own decoder before)."""
    q = model.quantizer_for("tcq", delta=0.35)
    assert q.delta == float(np.float32(0.35))
    back = quantizer_from_header(q.code, q.pack_params(), model.gaussian_conditional)
    k = q.quantize(latent["y"], latent["means"], latent["scales"])
    assert torch.equal(back.decode(q.encode(k, latent["scales"]), latent["scales"]), k)


@pytest.mark.parametrize("name, params", [("usq", {}), ("tcq", {"weighting": "none"})])
def test_online_rate_holds_means_near_y(model: Hyperprior, name: str, params: dict) -> None:
    """Phase 4's online rate is the real ``P(k | scales)``, and moving ``means`` away from ``y`` costs
    rate in its gradient. The real probability alone has no gradient in ``means`` (``k`` follows
    them): in online phase 4 of a context model the means of later slices drifted 15x from ``y``."""
    torch.manual_seed(0)
    q = model.quantizer_for(name, **params)
    y = torch.randn(2, 8, 6, 5) * 3
    scales = torch.full_like(y, 2.0, requires_grad=True)
    means = (y - torch.where(y > 0, 2.5, -2.5)).requires_grad_(True)  # residuals of +-2.5
    k, likelihoods = q.requantize(y, means, scales)
    assert torch.equal(k, q.quantize(y, means, scales))
    assert torch.equal(likelihoods, q.likelihoods(k, scales))
    bits = -torch.log2(likelihoods).sum()
    bits.backward()
    toward_y = torch.sign(y - means.detach())
    assert (means.grad * toward_y < 0).float().mean() > 0.9  # descending moves means toward y
    assert scales.grad is not None and scales.grad.abs().sum() > 0


def test_rdoq_never_costs_more_than_rounding_and_saves_real_bytes(model: Hyperprior, latent: dict) -> None:
    """Element by element, RDOQ's index costs no more ``w (r - k)^2 + lambda bits`` than rounding's, and
    some differ; at a large lambda its real stream is shorter than rounding's."""
    from lic.entropy import symbol_bits

    y, means, scales = latent["y"], latent["means"], latent["scales"]
    usq = model.quantizer_for("usq")
    rounded = usq.quantize(y, means, scales)
    bits, offsets, n = symbol_bits(model.gaussian_conditional)  # the coder's code lengths, read here by hand
    rows = usq.table_indexes(scales).long().numpy().ravel()
    r = (y - means).double().numpy().ravel()
    w = np.broadcast_to(model.decoder_sensitivity().double().numpy().reshape(1, -1, 1, 1), y.shape).ravel()
    k0 = np.round(r)
    for lam in (model.search_lambda(), 0.5):
        q = model.quantizer_for("rdoq", lambda_rdoq=lam)
        k = q.quantize(y, means, scales)

        def cost(c: np.ndarray) -> np.ndarray:
            sym = c.astype(np.int64) - offsets[rows]
            return w * (r - c) ** 2 + lam * bits[rows, np.where((sym >= 0) & (sym < n[rows]), sym, n[rows])]

        candidates = np.stack([k0, k0 - np.sign(k0), np.zeros_like(k0)])
        expected = candidates[np.argmin(np.stack([cost(c) for c in candidates]), axis=0), np.arange(len(r))]
        assert np.array_equal(k.numpy().ravel(), expected)  # the cheapest of the three, first on ties
        assert (cost(k.numpy().ravel().astype(np.float64)) <= cost(k0)).all()
        assert (k.abs() <= rounded.abs()).all()  # only toward zero
    assert (k != rounded).any()
    assert len(usq.encode(k, scales)) < len(usq.encode(rounded, scales))


def test_a_rdoq_stream_is_a_usq_stream_and_decodes_to_the_encoders_reconstruction(tiny_ckpt: Path) -> None:
    from lic import bitstream
    from lic.codec import Codec

    codec = Codec.from_checkpoint(tiny_ckpt)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (96, 130, 3), dtype=np.uint8)
    q = codec.quantizer("rdoq", lambda_rdoq=0.3)
    out = codec.encode(rgb, q, with_recon=True)
    header = bitstream.unpack(out.data, 10**7)[0]
    assert header.quantizer == make_quantizer("usq", codec.model.gaussian_conditional).code and header.qparams == b""
    assert np.array_equal(codec.decode(out.data), out.recon)
    assert out.data != codec.encode(rgb, codec.quantizer("usq")).data  # the decisions differ from rounding


def test_the_search_lambda_follows_the_models_lagrangian(model: Hyperprior) -> None:
    """``lambda_search = 3 / (lmbda * 255^2 * G)``; a model derives it from its training lambda and its
    decoder's mean gain, and the RDOQ it builds without a lambda takes it."""
    from lic.quantizers import search_lambda

    assert search_lambda(0.013, 0.02) == pytest.approx(3 / (0.013 * 255**2 * 0.02), rel=1e-12)
    assert search_lambda(0.026, 0.02) == pytest.approx(search_lambda(0.013, 0.02) / 2, rel=1e-12)
    assert model.lmbda == 0.01  # the tiny checkpoint's training lambda
    gain = float(model.channel_gains().mean())
    assert model.decoder_gain() == pytest.approx(gain, rel=1e-6)
    assert model.quantizer_for("rdoq").lambda_rdoq == pytest.approx(3 / (0.01 * 255**2 * gain), rel=1e-6)
    with pytest.raises(LicError, match="needs its search lambda"):
        make_quantizer("rdoq", model.gaussian_conditional)
