"""Trellis-coded quantization (TCQ) of latents, with a real entropy-coded bitstream.

The residual ``r = y - means`` is quantized by the Viterbi search of :mod:`lic.trellis`. The index
``k`` of quantizer ``q`` owns the decision cell

    Q0: [(2k - 1) delta, (2k + 1) delta]
    Q1: [-delta/2, delta/2] for k = 0, [delta/2, 2 delta] for k = 1, [(2k - 2) delta, 2k delta] for k >= 2

(mirrored for k < 0), and has probability ``P(k | q, sigma) = Phi(upper / sigma) - Phi(lower / sigma)``.

Entropy coding splits each index into its parity ``p = k & 1`` and ``m = k >> 1``. The parities
drive the state machine, so the decoder reads them first, one trellis step at a time with tiny
binary tables; then every state is known and all ``m`` decode in one call. The code length is the
same as coding ``k`` directly: ``P(k) = P(p) P(m | p)``.
"""

from __future__ import annotations

import copy
import math
import struct
from functools import cached_property
from typing import Any, Callable

import numpy as np
import torch
from compressai.entropy_models import GaussianConditional
from torch import Tensor

from lic import trellis, trellis_torch
from lic.compat import cdf_tables, pmf_to_quantized_cdf, set_cdf_tables, standard_cumulative
from lic.config import LAYOUTS, PERTURBATIONS, WEIGHTINGS
from lic.entropy import CdfTables, StreamDecoder, encode_symbols, symbol_bits, table_digest
from lic.errors import LicError
from lic.quantizers.base import Quantizer, Sensitivity

_PARAMS = struct.Struct(">ffBBI")
_TAIL = 6.11  # standard deviations covered by the tables (tail mass about 1e-9), as CompressAI


def cell_bounds(k: Tensor, q: Tensor, delta: float) -> tuple[Tensor, Tensor]:
    """Bounds of the decision cell of ``|k|`` (the mirror image for negative ``k``)."""
    a = k.abs().to(torch.float64)
    q = q.to(torch.bool)
    lo = torch.where(q, torch.where(a == 0, -delta / 2, torch.clamp((2 * a - 2) * delta, min=delta / 2)), (2 * a - 1) * delta)
    hi = torch.where(q & (a == 0), torch.full_like(a, delta / 2), torch.where(q, 2 * a * delta, (2 * a + 1) * delta))
    return lo, hi


def index_probability(k: Tensor, q: Tensor, sigma: Tensor, delta: float) -> Tensor:
    """``P(k | q, sigma)`` of a zero-mean Gaussian residual, accurate in the tails."""
    lo, hi = cell_bounds(k, q, delta)
    sigma = sigma.to(torch.float64)
    phi = lambda v: 0.5 * torch.erfc(-v / math.sqrt(2.0))  # noqa: E731
    return phi(-lo / sigma) - phi(-hi / sigma)


class TCQConditional(GaussianConditional):
    """CDF tables for TCQ indices, rows per (quantizer, scale bin); see the module docstring.

    Rows ``q * S + s`` code the parity; rows ``2 S + (2 q + p) * S + s`` code ``m``.
    """

    def __init__(self, scale_table: list[float], delta: float) -> None:
        super().__init__(scale_table)
        self.delta = float(delta)

    def update(self) -> None:
        sigmas = self.scale_table.double()
        S = len(sigmas)
        parity_rows: list[list[float]] = []
        m_by_row: dict[int, tuple[int, list[float], float]] = {}  # row -> (offset, pmf, tail)
        for q in (0, 1):
            for s in range(S):
                K = int(math.ceil(float(sigmas[s]) * _TAIL / (2 * self.delta))) + 2
                k = torch.arange(-K, K + 1)
                pk = index_probability(k, torch.full_like(k, q), sigmas[s].expand(len(k)), self.delta)
                parity_rows.append([float(pk[k % 2 == 0].sum()), float(pk[k % 2 == 1].sum())])
                for p in (0, 1):
                    kp, pp = k[(k & 1) == p], pk[(k & 1) == p]
                    pmf = pp / float(pp.sum())
                    m_by_row[(2 * q + p) * S + s] = (int(kp[0]) >> 1, pmf.tolist(), max(0.0, 1.0 - float(pmf.sum())))
        m_rows = [m_by_row[i] for i in range(4 * S)]
        rows = [(0, pmf, max(0.0, 1.0 - sum(pmf))) for pmf in parity_rows] + m_rows
        max_len = max(len(pmf) for _, pmf, _ in rows) + 2
        cdf = torch.zeros(len(rows), max_len, dtype=torch.int32)
        for i, (_, pmf, tail) in enumerate(rows):
            c = pmf_to_quantized_cdf(torch.tensor(pmf + [tail]), self.entropy_coder_precision)
            cdf[i, : len(c)] = c
        set_cdf_tables(self, cdf, torch.tensor([len(pmf) + 2 for _, pmf, _ in rows], dtype=torch.int32),
                       torch.tensor([off for off, _, _ in rows], dtype=torch.int32))

    def code_lengths(self) -> dict[str, np.ndarray]:
        """Bits of every symbol of every row, as the Viterbi search reads them (:func:`lic.entropy.symbol_bits`)."""
        S = len(self.scale_table)
        bits, offsets, n = symbol_bits(self)
        return {
            "bits_p": np.ascontiguousarray(bits[: 2 * S, :2]),
            "bits_m": np.ascontiguousarray(bits[2 * S :]),
            "m_offset": offsets[2 * S :],
            "m_len": np.ascontiguousarray(n[2 * S :]),
        }


class TCQ(Quantizer):
    """Trellis-coded quantizer with 4 or 8 states on step ``delta``.

    ``layout``: ``channel`` runs one trellis per channel over raster positions, ``row`` one per
    row of each channel, ``position`` one per spatial position across channels, ``single`` one
    over the whole latent. The decoder takes one step per call for all trellises at once, so
    ``row`` (latent width steps) decodes fastest of the per-channel layouts. ``weighting``:
    ``decoder`` scales the squared error of channel ``c`` in the search by the decoder's
    sensitivity (measured better by PSNR at the real rate), ``none`` leaves it unweighted.
    """

    name = "tcq"
    code = 1

    def __init__(self, conditional: GaussianConditional, sensitivity: Sensitivity | None = None, delta: float = 0.5,
                 lambda_tcq: float = 0.02, states: int = 8, layout: str = "row", perturbation: str = "switch",
                 weighting: str = "decoder") -> None:
        super().__init__(conditional, sensitivity)
        if states not in trellis.NEXT_STATE:
            raise LicError(f"TCQ states must be 4 or 8, got {states}")
        if layout not in LAYOUTS:
            raise LicError(f"TCQ layout must be one of {LAYOUTS}, got {layout!r}")
        if perturbation not in PERTURBATIONS:
            raise LicError(f"TCQ perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
        if weighting not in WEIGHTINGS:
            raise LicError(f"unknown TCQ weighting {weighting!r}; choose one of {WEIGHTINGS}")
        if not (0.01 <= delta <= 16 and math.isfinite(delta)):
            raise LicError(f"TCQ delta must lie in [0.01, 16], got {delta}")
        if not (lambda_tcq >= 0 and math.isfinite(lambda_tcq)):
            raise LicError(f"TCQ lambda must be a non-negative number, got {lambda_tcq}")
        # delta as the header carries it (float32): the decoder rebuilds the very same tables
        self.delta, self.lambda_tcq, self.states = float(np.float32(delta)), float(lambda_tcq), int(states)
        self.layout, self.perturbation, self.weighting = layout, perturbation, weighting
        self.next_state, self.quantizer_of = trellis.NEXT_STATE[states], trellis.QUANTIZER[states]

    # --- parameters -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"delta": self.delta, "lambda_tcq": self.lambda_tcq, "states": self.states, "layout": self.layout,
                "perturbation": self.perturbation, "weighting": self.weighting}

    def pack_params(self) -> bytes:
        """``delta``, ``lambda_tcq``, ``states``, ``layout`` and the CRC-32 of the tables."""
        return _PARAMS.pack(self.delta, self.lambda_tcq, self.states, LAYOUTS.index(self.layout), table_digest(self.tables))

    @classmethod
    def unpack_params(cls, data: bytes) -> dict[str, Any]:
        if len(data) != _PARAMS.size:
            raise LicError(f"TCQ parameters take {_PARAMS.size} bytes, the stream gives {len(data)}")
        delta, lmbda, states, layout, _ = _PARAMS.unpack(data)  # the digest is checked by repacking
        if layout >= len(LAYOUTS):
            raise LicError(f"stream names unknown TCQ layout {layout}")
        return {"delta": delta, "lambda_tcq": lmbda, "states": states, "layout": LAYOUTS[layout]}

    @cached_property
    def tables(self) -> TCQConditional:
        """The TCQ tables for this scale table and ``delta``, built once per entropy model."""
        c = self.conditional
        cache = c.__dict__.setdefault("_lic_tcq_tables", {})
        key = (tuple(c.scale_table.tolist()), self.delta)
        if key not in cache:
            with torch.inference_mode(False):  # persistent state, even when first built while coding
                t = TCQConditional(list(key[0]), self.delta)
                t.update()
            cache[key] = t
        return cache[key]

    def table_model(self) -> TCQConditional:
        return self.tables

    def with_tables(self, model: TCQConditional) -> "TCQ":
        out = copy.copy(self)
        for cached in ("_lengths", "_parity_tables"):
            out.__dict__.pop(cached, None)
        out.__dict__["tables"] = model
        return out

    @cached_property
    def _lengths(self) -> dict[str, np.ndarray]:
        return self.tables.code_lengths()

    @cached_property
    def _parity_tables(self) -> CdfTables:
        full = CdfTables.of(self.tables)
        n = 2 * len(self.conditional.scale_table)
        return CdfTables(full.cdfs[:n], full.lengths[:n], full.offsets[:n])

    # --- layout: latents <-> rows of independent trellises ---------------------------------
    def rows_of(self, t: Tensor) -> Tensor:
        """``t`` (``B x C x H x W``) as the layout's rows of independent trellises, on ``t``'s device."""
        B, C, H, W = t.shape
        if self.layout == "channel":
            return t.reshape(B * C, H * W)
        if self.layout == "position":
            return t.permute(0, 2, 3, 1).reshape(B * H * W, C)
        if self.layout == "row":
            return t.reshape(B * C * H, W)
        return t.reshape(B, C * H * W)

    def to_rows(self, t: Tensor) -> np.ndarray:
        """:meth:`rows_of` as a contiguous numpy array (for the numba kernels)."""
        return np.ascontiguousarray(self.rows_of(t.detach().cpu()).numpy())

    def from_rows(self, rows: np.ndarray | Tensor, shape: torch.Size) -> Tensor:
        B, C, H, W = shape
        t = rows if isinstance(rows, Tensor) else torch.from_numpy(np.ascontiguousarray(rows))
        if self.layout == "position":
            return t.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()
        return t.reshape(B, C, H, W)

    # --- the interface ----------------------------------------------------------------------
    def perturb(self, y: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        """``r~ = r + w u``, ``u ~ U(-1/2, 1/2)``; likelihood ``Phi((w/2 - |r~|)/s) - Phi((-w/2 - |r~|)/s)``.

        The width ``w`` per perturbation: ``switch`` picks Q0 or Q1 at random per element and takes
        that quantizer's cell width at ``r`` (``2 delta``; for Q1 ``delta`` in the zero cell and
        ``1.5 delta`` in the +-1 cells); ``uniform`` is ``2 delta`` (the step of Q0 and Q1);
        ``union`` is ``delta`` (the step of the union of their levels).
        """
        y_tilde, width = self.perturb_alone(y, means)
        return y_tilde, self.likelihood_of(y_tilde, width, means, scales)

    @property
    def needs_means(self) -> bool:
        return self.perturbation == "switch"

    def perturb_alone(self, y: Tensor, means: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``y + w u``; ``switch`` takes its widths from ``r = y - means`` (``means`` a guess of them
        where they are not known yet: a spatial context model's first pass)."""
        d = self.delta
        width = torch.full_like(y, d if self.perturbation == "union" else 2 * d)
        if self.perturbation == "switch":
            if means is None:
                raise LicError("TCQ's switching perturbation needs the means (or a guess of them) first")
            a = (y - means).detach().abs()
            q1 = torch.rand_like(y) < 0.5
            width = torch.where(q1 & (a < d / 2), torch.full_like(y, d), width)
            width = torch.where(q1 & (a >= d / 2) & (a < 2 * d), torch.full_like(y, 1.5 * d), width)
        return y + (torch.rand_like(y) - 0.5) * width, width

    def likelihood_of(self, y_tilde: Tensor, width: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """``Phi((w/2 - |r~|)/s) - Phi((-w/2 - |r~|)/s)``, ``r~ = y_tilde - means``, ``s`` the lower-bounded scale."""
        c = self.conditional
        sigma = c.lower_bound_scale(scales)
        v = (y_tilde - means).abs()
        lik = standard_cumulative(c, (width / 2 - v) / sigma) - standard_cumulative(c, (-width / 2 - v) / sigma)
        return c.likelihood_lower_bound(lik) if c.use_likelihood_bound else lik

    @property
    def uses_sensitivity(self) -> bool:
        return self.weighting == "decoder"

    def channel_weights(self, shape: torch.Size, device: torch.device | str = "cpu") -> Tensor:
        """Weight of each element's squared error in the search, in the layout's rows (float64)."""
        B, C, H, W = shape
        if self.weighting == "none":
            return torch.ones((1, 1), dtype=torch.float64, device=device)
        if self.sensitivity is None:
            raise LicError("TCQ weighting 'decoder' needs the model's decoder: build the quantizer with "
                           "Hyperprior.quantizer_for, or pass weighting='none'")
        w = self.sensitivity().detach().to(device, torch.float64).reshape(1, C, 1, 1).expand(B, C, H, W)
        return self.rows_of(w)

    def quantize(self, y: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """The Viterbi search's indices: :func:`lic.trellis.viterbi` (numba, every core) for latents on
        the CPU, :func:`lic.trellis_torch.viterbi` for latents on a GPU; both choose the indices of
        :func:`lic.trellis.viterbi_reference`."""
        r = self.rows_of((y - means).double())
        sidx = self.rows_of(self.table_indexes(scales).long())
        w = self.channel_weights(y.shape, y.device).expand_as(r)
        L, S = self._lengths, len(self.conditional.scale_table)
        args = (self.delta, self.lambda_tcq, self.next_state, self.quantizer_of, S, L["bits_p"], L["bits_m"],
                L["m_offset"], L["m_len"])
        if y.is_cuda:
            return self.from_rows(trellis_torch.viterbi(r, w, sidx, *args), y.shape)
        k = trellis.viterbi(*(np.ascontiguousarray(t.detach().cpu().numpy()) for t in (r, w, sidx)), *args)
        return self.from_rows(k, y.shape).to(y.device)

    def dequantize(self, indices: Tensor, means: Tensor) -> Tensor:
        k = self.to_rows(indices.long())
        q = self.quantizer_of[trellis.states(k, self.next_state)]
        level = trellis.levels(k, q, self.delta)
        return means + self.from_rows(level, indices.shape).to(means)

    def likelihoods(self, indices: Tensor, scales: Tensor) -> Tensor:
        """``P(k | q, sigma)``, ``q`` the quantizer of each element's state; differentiable in ``scales``."""
        k = self.to_rows(indices.long())
        q = self.from_rows(self.quantizer_of[trellis.states(k, self.next_state)], indices.shape).to(scales.device)
        sigma = self.conditional.lower_bound_scale(scales)
        p = index_probability(indices.long().to(scales.device), q, sigma, self.delta)
        return p.clamp_min(1e-9).to(scales.dtype)

    def estimated_bits(self, indices: Tensor, scales: Tensor) -> float:
        """Sum of the code lengths the trellis search charges (``bits`` in its cost)."""
        k = self.to_rows(indices.long())
        sidx = self.to_rows(self.table_indexes(scales).long())
        return float(trellis.path_bits(k, sidx, self.next_state, self.quantizer_of, len(self.conditional.scale_table),
                                       **self._lengths))

    @classmethod
    def threads(cls, n: int) -> None:
        trellis.threads(n)

    def coded_symbols(self, indices: Tensor, scales: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(symbols, rows)``: the parity and the magnitude of each index, each in its own row of the
        index's (quantizer, scale bin)."""
        k = self.to_rows(indices.long())
        p_rows, m_rows = self._symbol_rows(k, self.to_rows(self.table_indexes(scales).long()))
        return np.concatenate([(k & 1).ravel(), (k >> 1).ravel()]), np.concatenate([p_rows.ravel(), m_rows.ravel()])

    def _symbol_rows(self, k: np.ndarray, sidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = len(self.conditional.scale_table)
        q = self.quantizer_of[trellis.states(k, self.next_state)]
        return q * S + sidx, 2 * S + (2 * q + (k & 1)) * S + sidx

    def encode_parts(self, parts: list[tuple[Tensor, Tensor]]) -> bytes:
        """The parities of every part, step by step across its trellises (the decoder reads them so, to
        follow the states), then the ``k >> 1`` of every part: two rANS streams, the first after its length."""
        tables = CdfTables.of(self.tables)
        symbols: dict[str, list[Tensor]] = {"parity": [], "p_rows": [], "m": [], "m_rows": []}
        for indices, scales in parts:
            k = self.to_rows(indices.long())
            p_rows, m_rows = self._symbol_rows(k, self.to_rows(self.table_indexes(scales).long()))
            # position-major order: the decoder reads step j of every trellis, then step j + 1
            for name, value in (("parity", k & 1), ("p_rows", p_rows), ("m", k >> 1), ("m_rows", m_rows)):
                symbols[name].append(torch.from_numpy(value.T.copy()).reshape(-1))
        parity = encode_symbols(torch.cat(symbols["parity"]), torch.cat(symbols["p_rows"]), tables)
        m = encode_symbols(torch.cat(symbols["m"]), torch.cat(symbols["m_rows"]), tables)
        return struct.pack(">I", len(parity)) + parity + m

    def decoder(self, data: bytes) -> Callable[[Tensor], Tensor]:
        if len(data) < 4 or struct.unpack(">I", data[:4])[0] > len(data) - 4:
            raise LicError("TCQ stream is truncated")
        n = struct.unpack(">I", data[:4])[0]
        parities, ms = StreamDecoder(data[4 : 4 + n]), StreamDecoder(data[4 + n :])
        S = len(self.conditional.scale_table)
        pt, full = self._parity_tables, CdfTables.of(self.tables)

        def read(scales: Tensor) -> Tensor:
            sidx = self.to_rows(self.table_indexes(scales).long())
            T, L = sidx.shape
            parity = np.empty((T, L), dtype=np.int64)
            state = np.zeros(T, dtype=np.int64)
            for j in range(L):
                p = parities.read(torch.from_numpy(self.quantizer_of[state] * S + sidx[:, j]), pt).numpy().astype(np.int64)
                if p.min(initial=0) < 0 or p.max(initial=0) > 1:
                    raise LicError("TCQ stream is corrupted (parity out of range)")
                parity[:, j] = p
                state = self.next_state[state, p]
            _, m_rows = self._symbol_rows(parity, sidx)
            m = ms.read(torch.from_numpy(m_rows.T.copy()), full).numpy().reshape(L, T).T
            return self.from_rows((2 * m.astype(np.int64) + parity).astype(np.int32), scales.shape)

        return read
