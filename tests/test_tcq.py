"""Trellis-coded quantization: state machines, Viterbi optimality, exact decoding, rate estimate."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from lic import trellis
from lic.checkpoint import load_checkpoint
from lic.codec import Codec, pad
from lic.data import to_tensor
from lic.quantizers import make_quantizer
from lic.quantizers.tcq import TCQ

# The tables of docs/tcq.md (VTM and ECM): (quantizer, next if even, next if odd) per state.
TCQ_MD = {
    4: [(0, 0, 2), (0, 2, 0), (1, 1, 3), (1, 3, 1)],
    8: [(0, 0, 2), (1, 5, 7), (0, 1, 3), (1, 6, 4), (0, 2, 0), (1, 4, 6), (0, 3, 1), (1, 7, 5)],
}


@pytest.mark.parametrize("states", [4, 8])
def test_state_machine_matches_reference_tables(states: int) -> None:
    for s, (q, even, odd) in enumerate(TCQ_MD[states]):
        assert trellis.QUANTIZER[states][s] == q
        assert list(trellis.NEXT_STATE[states][s]) == [even, odd]
    for s in range(4):  # VTM's packed form of the 4-state table
        for k in range(2):
            assert trellis.NEXT_STATE[4][s, k] == (32040 >> ((s << 2) + (k << 1))) & 3


def test_levels_of_both_quantizers() -> None:
    k = np.arange(-3, 4)
    assert list(trellis.levels(k, np.zeros_like(k), 0.5)) == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert list(trellis.levels(k, np.ones_like(k), 0.5)) == [-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5]


@pytest.fixture(scope="module")
def model(tiny_ckpt: Path):
    return load_checkpoint(tiny_ckpt)[0]


def _cost_numpy(q: TCQ, k: np.ndarray, r: np.ndarray, sidx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """J of each row of index sequences ``k`` (rows x L), straight from the definition."""
    L = q._lengths
    S = len(q.conditional.scale_table)
    st = np.zeros(len(k), dtype=np.int64)
    total = np.zeros(len(k))
    for j in range(k.shape[1]):
        quant = q.quantizer_of[st]
        p = k[:, j] & 1
        row = (2 * quant + p) * S + sidx[j]
        v = (k[:, j] >> 1) - L["m_offset"][row]
        n = L["m_len"][row]
        v = np.where((v < 0) | (v > n), n, v)
        bits = L["bits_p"][quant * S + sidx[j], p] + L["bits_m"][row, v]
        d = r[j] - trellis.levels(k[:, j], quant, q.delta)
        total += w[j] * d * d + q.lambda_tcq * bits
        st = q.next_state[st, p]
    return total


@pytest.mark.parametrize("states", [4, 8])
@pytest.mark.parametrize("lambda_tcq", [0.0, 0.1, 0.4])
def test_viterbi_matches_brute_force(model, states: int, lambda_tcq: float) -> None:
    rng = np.random.default_rng(states * 10 + int(lambda_tcq * 10))
    q = make_quantizer("tcq", model.gaussian_conditional, states=states, lambda_tcq=lambda_tcq, weighting="none")
    L = q._lengths
    all_k = np.array(list(itertools.product(range(-4, 5), repeat=6)), dtype=np.int64)
    for trial in range(6):
        n = 5 + trial % 2
        r = rng.normal(0, 1.0, n)
        sidx = rng.integers(0, 20, n)
        w = rng.uniform(0.5, 2.0, n)
        k = trellis.viterbi(r[None], w[None], sidx[None], q.delta, q.lambda_tcq, q.next_state, q.quantizer_of,
                            len(q.conditional.scale_table), L["bits_p"], L["bits_m"], L["m_offset"], L["m_len"])
        brute = _cost_numpy(q, np.unique(all_k[:, :n], axis=0), r, sidx, w).min()
        found = _cost_numpy(q, k.astype(np.int64), r, sidx, w)[0]
        assert found == pytest.approx(brute, abs=1e-9)


@pytest.fixture(scope="module")
def latent(model, test_images: Path):
    from PIL import Image

    rgb = np.asarray(Image.open(test_images / "coffee.png").convert("RGB"))[:192, :256].copy()
    with torch.inference_mode():
        a = model.analyze(pad(to_tensor(rgb)))
    return rgb, a["y"], a["means"], a["scales"]


@pytest.mark.parametrize("states", [4, 8])
@pytest.mark.parametrize("layout", ["channel", "row", "position", "single"])
def test_decoder_reproduces_encoder_latents(model, latent, states: int, layout: str) -> None:
    rgb, y, means, scales = latent
    q = make_quantizer("tcq", model.gaussian_conditional, states=states, layout=layout, weighting="none")
    k = q.quantize(y, means, scales)
    back = q.decode(q.encode(k, scales), scales)
    assert torch.equal(k, back)
    assert torch.equal(q.dequantize(k, means), q.dequantize(back, means))


@pytest.mark.parametrize("states", [4, 8])
def test_image_round_trip_is_bit_exact(tiny_ckpt: Path, latent, states: int) -> None:
    codec = Codec.from_checkpoint(tiny_ckpt)
    rgb = latent[0]
    enc = codec.encode(rgb, codec.quantizer("tcq", states=states, layout="channel"), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)


def test_estimated_rate_is_close_to_real_stream(model, latent) -> None:
    _, y, means, scales = latent
    q = make_quantizer("tcq", model.gaussian_conditional, states=8, lambda_tcq=0.1, weighting="none")
    k = q.quantize(y, means, scales)
    real_bits = 8 * len(q.encode(k, scales))
    assert q.estimated_bits(k, scales) == pytest.approx(real_bits, rel=0.03)


def test_zero_lambda_is_minimum_distortion_and_beats_double_step_usq(model, latent) -> None:
    _, y, means, scales = latent
    q = make_quantizer("tcq", model.gaussian_conditional, states=8, lambda_tcq=0.0, delta=0.5, weighting="none")
    mse_tcq = float(((q.dequantize(q.quantize(y, means, scales), means) - y) ** 2).mean())
    r = y - means
    mse_usq = float(((torch.round(r / (2 * q.delta)) * 2 * q.delta - r) ** 2).mean())  # Q0 or Q1 step alone
    assert mse_tcq < mse_usq
    # no path has lower distortion: each element is at least as close as its nearest union-grid level
    assert mse_tcq >= float(((torch.round(r / q.delta) * q.delta - r) ** 2).mean())


def test_weighting_changes_the_search(model, latent) -> None:
    _, y, means, scales = latent
    w = torch.linspace(0.2, 5.0, y.shape[1])
    gc = model.gaussian_conditional
    a = make_quantizer("tcq", gc, lambda_tcq=0.2, weighting="none").quantize(y, means, scales)
    b = make_quantizer("tcq", gc, lambda: w, lambda_tcq=0.2, weighting="decoder").quantize(y, means, scales)
    assert not torch.equal(a, b)


def test_corrupt_parameters_are_refused(model) -> None:
    from lic.errors import LicError

    with pytest.raises(LicError):
        make_quantizer("tcq", model.gaussian_conditional, states=5)
    with pytest.raises(LicError):
        TCQ.unpack_params(b"\x00" * 3)


@pytest.mark.parametrize("perturbation", ["switch", "uniform", "union"])
def test_perturbation_stays_in_a_cell_and_has_valid_likelihoods(model, perturbation: str) -> None:
    torch.manual_seed(0)
    q = make_quantizer("tcq", model.gaussian_conditional, delta=0.5, perturbation=perturbation)
    y = torch.randn(2, 16, 8, 8, requires_grad=True)
    means, scales = torch.zeros_like(y), torch.full_like(y, 0.8)
    y_tilde, lik = q.perturb(y, means, scales)
    half_width = q.delta / 2 if perturbation == "union" else q.delta
    assert float((y_tilde - y).abs().max()) <= half_width + 1e-6
    assert float((y_tilde - y).abs().max()) > 0.9 * half_width
    assert bool(((lik > 0) & (lik <= 1)).all())
    (-torch.log2(lik).sum() + y_tilde.sum()).backward()
    assert y.grad is not None and bool(torch.isfinite(y.grad).all())


def test_tcq_trained_model_codes_with_its_own_quantizer(tmp_path: Path, train_images: Path, photo) -> None:
    from conftest import TINY_TRAIN
    from lic.config import ModelConfig
    from lic.train import train

    cfg = ModelConfig(N=16, M=16, quantizer="tcq", quantizer_params={"perturbation": "switch", "delta": 0.5})
    out = tmp_path / "tcq.ckpt"
    from dataclasses import replace

    train(cfg, replace(TINY_TRAIN, steps=4), train_images, out, progress=False)
    codec = Codec.from_checkpoint(out)
    assert codec.model.quantizer.name == "tcq"
    enc = codec.encode(photo, codec.quantizer(), with_recon=True)
    from lic import bitstream

    assert bitstream.unpack(enc.data, 10**8)[0].quantizer == TCQ.code
    assert np.array_equal(codec.decode(enc.data), enc.recon)


def _search_inputs(rng: np.random.Generator, q: TCQ, T: int, L: int, kind: str) -> tuple[np.ndarray, ...]:
    """Rows of residuals of one kind: Gaussian, ties (exact decision boundaries and cell midpoints),
    zeros, escapes beyond the tables, huge values; random weights and scale bins."""
    d = q.delta
    if kind == "gauss":
        r = rng.normal(0, 2.0, (T, L))
    elif kind in ("ties", "path-ties"):
        r = rng.integers(-12, 13, (T, L)) * (d / 2)  # on levels and on the midpoints between them
    elif kind == "zeros":
        r = np.where(rng.random((T, L)) < 0.8, 0.0, rng.normal(0, 1.0, (T, L)))
    elif kind == "escapes":
        r = rng.choice([-1, 1], (T, L)) * rng.uniform(20, 300, (T, L)) * d
    else:
        r = rng.choice([-1, 1], (T, L)) * 10.0 ** rng.uniform(2, 6, (T, L))
    tied = kind in ("ties", "path-ties")
    w = rng.choice([1.0, 0.5, 2.0, 3.7], (T, L)) if not tied else np.ones((T, L))
    S = len(q.conditional.scale_table)
    sidx = rng.integers(0, S, (T, L)) if not tied else np.full((T, L), S // 3)
    return np.ascontiguousarray(r), np.ascontiguousarray(w), sidx.astype(np.int64)


@pytest.mark.parametrize("states", [4, 8])
@pytest.mark.parametrize("kind", ["gauss", "ties", "path-ties", "zeros", "escapes", "huge"])
def test_fast_searches_choose_the_reference_indices(model, states: int, kind: str) -> None:
    """The parallel pruned numba search (1 and 2 threads) and the torch search return exactly the
    reference search's indices, for trellises of every shape the layouts make. ``path-ties``: the
    inputs of ``ties`` with no rate term, so that paths of equal cost meet in a state (exact sums of
    multiples of delta^2 / 4) and the first transition in the reference's order must win."""
    import numba

    from lic import trellis_torch

    q = make_quantizer("tcq", model.gaussian_conditional, states=states, lambda_tcq=0.05, weighting="none")
    L = q._lengths
    rng = np.random.default_rng(states * 10 + len(kind))
    for T, steps in ((1, 300), (300, 1), (257, 16), (40, 96)):  # single, position-like, row, channel
        r, w, sidx = _search_inputs(rng, q, T, steps, kind)
        args = (q.delta, 0.0 if kind == "path-ties" else q.lambda_tcq, q.next_state, q.quantizer_of,
                len(q.conditional.scale_table), L["bits_p"], L["bits_m"], L["m_offset"], L["m_len"])
        ref = trellis.viterbi_reference(r, w, sidx, *args)
        for n in (1, 2):
            before = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            try:
                assert np.array_equal(trellis.viterbi(r, w, sidx, *args), ref), (T, steps, n)
            finally:
                numba.set_num_threads(before)
        got = trellis_torch.viterbi(torch.from_numpy(r), torch.from_numpy(w), torch.from_numpy(sidx), *args)
        assert np.array_equal(got.numpy(), ref), (T, steps, "torch")


@pytest.mark.parametrize("layout", ["row", "channel", "position", "single"])
def test_every_search_quantizes_real_latents_alike(model, photo: np.ndarray, layout: str) -> None:
    """On real latents with the decoder weighting, each layout: the quantizer's indices (numba, or torch
    when the latents are on a GPU, here forced through the torch search on CPU) are the reference's."""
    from lic import trellis_torch

    q = model.quantizer_for("tcq", layout=layout)
    with torch.inference_mode():
        a = model.analyze(pad(to_tensor(photo)))
    y, means, scales = a["y"], a["means"], a["scales"]
    r = q.rows_of((y - means).double())
    sidx = q.rows_of(q.table_indexes(scales).long())
    w = q.channel_weights(y.shape).expand_as(r)
    L = q._lengths
    args = (q.delta, q.lambda_tcq, q.next_state, q.quantizer_of, len(q.conditional.scale_table), L["bits_p"],
            L["bits_m"], L["m_offset"], L["m_len"])
    ref = trellis.viterbi_reference(*(np.ascontiguousarray(t.numpy()) for t in (r, w, sidx)), *args)
    assert np.array_equal(q.to_rows(q.quantize(y, means, scales)), ref)
    assert np.array_equal(trellis_torch.viterbi(r, w, sidx, *args).numpy(), ref)
