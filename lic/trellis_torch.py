"""The Viterbi search of :mod:`lic.trellis` in torch, for latents on a GPU: batched over the trellises
(rows), sequential over the trellis steps, the candidates of each step vectorized.

It computes what :func:`lic.trellis.viterbi_reference` computes, in the same order and precision
(float64 costs, the entropy coder's code lengths), and breaks ties the same way: the smaller ``|k|``
among a parity's candidates (zero last when it lies outside the window), the first incoming edge in
(state, parity) order, the lowest final state. So it chooses the same indices, and a stream coded on
a GPU is the stream the CPU would have coded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lic.trellis import WINDOW, incoming


def _bits(k: Tensor, q: int, si: Tensor, n_scales: int, bits_p: Tensor, bits_m: Tensor, m_offset: Tensor,
          m_len: Tensor) -> Tensor:
    """Code length of index ``k`` in quantizer ``q`` (see :func:`lic.trellis._bits`)."""
    p = k & 1
    row = (2 * q + p) * n_scales + si
    v = (k >> 1) - m_offset[row]
    n = m_len[row]
    v = torch.where((v < 0) | (v > n), n, v)
    return bits_p[q * n_scales + si, p] + bits_m[row, v]


def _best(r: Tensor, w: Tensor, si: Tensor, q: int, delta: float, lmbda: float, tables: tuple) -> tuple[Tensor, ...]:
    """Per trellis, the cheapest candidate of each parity in quantizer ``q``: ``(J_even, k_even, J_odd, k_odd)``."""
    a = r.abs()
    sgn = torch.where(r >= 0, 1, -1)
    inv = 1.0 / delta
    half_inv = 0.5 * inv
    lo = (a * half_inv).long() if q == 0 else torch.clamp(((a * inv + 1.0) * 0.5).long(), min=1)
    first = torch.clamp(lo + 1 - WINDOW, min=0)
    c = first[:, None] + torch.arange(WINDOW + 1, device=r.device)  # ascending, as the reference visits them
    valid = c <= (lo + 1)[:, None]
    c = torch.cat([c, torch.zeros_like(first)[:, None]], 1)  # zero last: outside the window it loses ties
    valid = torch.cat([valid, (first > 0)[:, None]], 1)
    k = torch.where(c > 0, sgn[:, None] * c, 0)
    level = (2 * k - q * torch.sign(k)).double() * delta
    d = r[:, None] - level
    jc = w[:, None] * d * d + lmbda * _bits(k, q, si[:, None].expand_as(k), *tables)
    jc = torch.where(valid, jc, torch.inf)
    odd = (k & 1).bool()
    out = []
    for parity in (~odd, odd):
        j = torch.where(parity, jc, torch.inf)
        i = torch.argmin(j, 1, keepdim=True)  # the first of equal minima: the smallest |k|
        out += [j.gather(1, i)[:, 0], k.gather(1, i)[:, 0]]
    return tuple(out)


@torch.no_grad()
def viterbi(r: Tensor, weight: Tensor, scale_idx: Tensor, delta: float, lmbda: float, next_state: np.ndarray,
            quantizer: np.ndarray, n_scales: int, bits_p: np.ndarray, bits_m: np.ndarray, m_offset: np.ndarray,
            m_len: np.ndarray) -> Tensor:
    """Indices (int32, ``T x L``) minimising ``J`` for each row of ``r`` (float64), on ``r``'s device."""
    dev = r.device
    T, L = r.shape
    S = next_state.shape[0]
    tables = (n_scales, *(torch.as_tensor(t, device=dev) for t in (bits_p, bits_m, m_offset, m_len)))
    weight = weight.to(dev, torch.float64).expand(T, L)
    scale_idx = scale_idx.to(dev, torch.long)
    # each state's two incoming edges, in the reference's (state, parity) order: source, 2 q + parity
    src, col = (torch.as_tensor(a, device=dev) for a in incoming(next_state, quantizer))
    qz, par = col // 2, col % 2  # the quantizer of each edge's source state, and the edge's parity
    cost = torch.full((T, S), torch.inf, dtype=torch.float64, device=dev)
    cost[:, 0] = 0.0
    back_s = torch.empty((L, T, S), dtype=torch.long, device=dev)
    back_k = torch.empty((L, T, S), dtype=torch.long, device=dev)
    for j in range(L):
        best = [_best(r[:, j], weight[:, j], scale_idx[:, j], q, delta, lmbda, tables) for q in (0, 1)]
        jq = torch.stack([torch.stack([b[0], b[2]], 1) for b in best], 1)  # T x quantizer x parity
        kq = torch.stack([torch.stack([b[1], b[3]], 1) for b in best], 1)
        v = cost[:, src] + jq[:, qz, par]  # T x S x 2: each state's incoming edges
        i = torch.argmin(v, 2, keepdim=True)  # the first of equal costs, as the reference's strict <
        cost = v.gather(2, i)[..., 0]
        back_s[j] = src.expand(T, S, 2).gather(2, i)[..., 0]
        back_k[j] = kq[:, qz, par].gather(2, i)[..., 0]
    s = torch.argmin(cost, 1)
    out = torch.empty((T, L), dtype=torch.int32, device=dev)
    rows = torch.arange(T, device=dev)
    for j in range(L - 1, -1, -1):
        out[:, j] = back_k[j, rows, s].int()
        s = back_s[j, rows, s]
    return out
