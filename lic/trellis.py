"""Trellis-coded quantization: state machines, reconstruction levels and the Viterbi search.

Two scalar quantizers on a step ``delta`` (VVC dependent quantization):

- Q0: levels ``2 k delta``;
- Q1: levels ``(2 k - sgn k) delta``.

The state picks the quantizer and the parity of each index ``k`` steps the state. The encoder
chooses all indices of a trellis jointly, minimising

    J = sum_i  w_i (r_i - level(k_i))^2  +  lambda_tcq * bits(k_i | quantizer_i, scale_i)

over the paths through the trellis (Viterbi). Each row of ``r`` is an independent trellis that
starts in state 0. The kernels are compiled with numba; they loop over elements in machine code.
"""

from __future__ import annotations

import os

import numba
import numpy as np

WINDOW = 8  # candidate levels per quantizer besides zero (all of them for |r| < about 8 delta)
BLOCK = 64  # rows a thread searches in one go (scratch arrays allocated once per block)
PRUNE = 1.0 + 1e-9  # a candidate is skipped when its distortion alone exceeds the best costs by this factor

# NEXT_STATE[states][s, parity]; QUANTIZER[states][s] (from VTM DepQuant.cpp and ECM Rom.cpp).
NEXT_STATE = {
    4: np.array([[0, 2], [2, 0], [1, 3], [3, 1]], dtype=np.int64),
    8: np.array([[0, 2], [5, 7], [1, 3], [6, 4], [2, 0], [4, 6], [3, 1], [7, 5]], dtype=np.int64),
}
QUANTIZER = {
    4: np.array([0, 0, 1, 1], dtype=np.int64),
    8: np.array([s & 1 for s in range(8)], dtype=np.int64),
}


def levels(k: np.ndarray, q: np.ndarray, delta: float) -> np.ndarray:
    """Reconstruction of index ``k`` in quantizer ``q``: ``(2k - q sgn k) delta``."""
    return (2 * k - q * np.sign(k)) * delta


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", inline="always")
def _level(k: int, q: int, delta: float) -> float:
    sgn = 1 if k > 0 else (-1 if k < 0 else 0)
    return (2 * k - q * sgn) * delta


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", inline="always")
def _bits(k: int, q: int, si: int, n_scales: int, bits_p: np.ndarray, bits_m: np.ndarray,
          m_offset: np.ndarray, m_len: np.ndarray) -> float:
    """Code length of index ``k``: its parity, then ``m = k >> 1`` in the table of that parity.

    Column ``m_len[row]`` of ``bits_m`` holds the escape cost for values outside the table.
    """
    p = k & 1
    row = (2 * q + p) * n_scales + si
    v = (k >> 1) - m_offset[row]
    n = m_len[row]
    v = n if (v < 0) | (v > n) else v
    return bits_p[q * n_scales + si, p] + bits_m[row, v]


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def viterbi_reference(r: np.ndarray, weight: np.ndarray, scale_idx: np.ndarray, delta: float, lmbda: float,
                      next_state: np.ndarray, quantizer: np.ndarray, n_scales: int, bits_p: np.ndarray,
                      bits_m: np.ndarray, m_offset: np.ndarray, m_len: np.ndarray) -> np.ndarray:
    """The search as first written, one row after another on one core: the reference that
    :func:`viterbi` and :mod:`lic.trellis_torch` must match index for index.

    Indices minimising ``J`` for each row (trellis) of ``r``; all rows start in state 0.

    Candidates per element and quantizer: zero and the ``WINDOW`` levels from the one just
    above ``|r|`` down towards zero, on the side of ``r`` (levels beyond, or on the other side,
    cost more bits for more distortion). For each quantizer and parity only the cheapest
    candidate can lie on a best path, so each state has two outgoing transitions.
    ``bits_p[q * n_scales + s, parity]`` and ``bits_m[(2q + parity) * n_scales + s, m - m_offset]``
    are the entropy coder's code lengths.
    """
    T, L = r.shape
    S = next_state.shape[0]
    out = np.zeros((T, L), dtype=np.int32)
    cost = np.empty(S)
    new = np.empty(S)
    back_s = np.empty((L, S), dtype=np.int8)
    back_k = np.empty((L, S), dtype=np.int32)
    best_j = np.empty((2, 2))  # [quantizer, parity]
    best_k = np.empty((2, 2), dtype=np.int64)
    inv = 1.0 / delta
    half_inv = 0.5 * inv
    for t in range(T):
        cost[:] = np.inf
        cost[0] = 0.0
        for j in range(L):
            ri = r[t, j]
            wi = weight[t, j]
            si = scale_idx[t, j]
            a = abs(ri)
            sgn = 1 if ri >= 0 else -1
            for q in range(2):
                if q == 0:
                    lo = int(a * half_inv)
                else:
                    lo = max(1, int((a * inv + 1.0) * 0.5))
                best_j[q, 0] = np.inf
                best_j[q, 1] = np.inf
                for c in range(max(0, lo + 1 - WINDOW), lo + 2):
                    k = sgn * c if c > 0 else 0
                    d = ri - _level(k, q, delta)
                    jc = wi * d * d + lmbda * _bits(k, q, si, n_scales, bits_p, bits_m, m_offset, m_len)
                    p = k & 1
                    if jc < best_j[q, p]:
                        best_j[q, p] = jc
                        best_k[q, p] = k
                if lo + 1 - WINDOW > 0:  # zero is always a candidate
                    jc = wi * ri * ri + lmbda * _bits(0, q, si, n_scales, bits_p, bits_m, m_offset, m_len)
                    if jc < best_j[q, 0]:
                        best_j[q, 0] = jc
                        best_k[q, 0] = 0
            for s in range(S):
                new[s] = np.inf
            for s in range(S):
                cs = cost[s]
                if cs == np.inf:
                    continue
                q = quantizer[s]
                for p in range(2):
                    ns = next_state[s, p]
                    v = cs + best_j[q, p]
                    if v < new[ns]:
                        new[ns] = v
                        back_s[j, ns] = s
                        back_k[j, ns] = best_k[q, p]
            for s in range(S):
                cost[s] = new[s]
        s = int(np.argmin(cost))
        for j in range(L - 1, -1, -1):
            out[t, j] = back_k[j, s]
            s = back_s[j, s]
    return out


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", inline="always")
def _best(ri: float, wi: float, si: int, q: int, delta: float, lmbda: float, n_scales: int, bits_p: np.ndarray,
          bits_m: np.ndarray, m_offset: np.ndarray, m_len: np.ndarray) -> tuple[float, int, float, int]:
    """The cheapest candidate of each parity for quantizer ``q``: ``(J_even, k_even, J_odd, k_odd)``.

    The candidates of :func:`viterbi_reference`, visited nearest ``r`` first: the level just past
    ``|r|``, then the levels below it, moving away. Once a candidate's distortion alone exceeds both
    parities' best costs, no candidate further away can win (its distortion is larger, and rates are
    not negative), so the search stops; the test leaves a relative margin (:data:`PRUNE`) far above
    rounding, so that it never skips a candidate the reference could choose. Costs are computed as the
    reference computes them, and ties go to the smaller ``|k|``, as there.
    """
    a = abs(ri)
    sgn = 1 if ri >= 0 else -1
    inv = 1.0 / delta  # as the reference computes them: the same candidates to the last bit
    half_inv = 0.5 * inv
    if q == 0:
        lo = int(a * half_inv)
    else:
        lo = max(1, int((a * inv + 1.0) * 0.5))
    first = max(0, lo + 1 - WINDOW)
    j0, j1 = np.inf, np.inf
    k0, k1 = 0, 0
    for c in range(lo + 1, first - 1, -1):
        k = sgn * c if c > 0 else 0
        d = ri - _level(k, q, delta)
        if c <= lo and d * d * wi > j0 * PRUNE and d * d * wi > j1 * PRUNE:
            break
        jc = wi * d * d + lmbda * _bits(k, q, si, n_scales, bits_p, bits_m, m_offset, m_len)
        if k & 1:
            if jc <= j1:
                j1, k1 = jc, k
        elif jc <= j0:
            j0, k0 = jc, k
    if first > 0 and not ri * ri * wi > j0 * PRUNE:  # zero, always a candidate; outside the window it loses ties
        jc = wi * ri * ri + lmbda * _bits(0, q, si, n_scales, bits_p, bits_m, m_offset, m_len)
        if jc < j0:
            j0, k0 = jc, 0
    return j0, k0, j1, k1


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def incoming(next_state: np.ndarray, quantizer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two transitions into each state, in the order :func:`viterbi_reference` visits them (by
    source state, then parity): ``src[ns, i]`` and the column ``2 q + parity`` of its candidate."""
    S = next_state.shape[0]
    src = np.zeros((S, 2), dtype=np.int64)
    col = np.zeros((S, 2), dtype=np.int64)
    n_in = np.zeros(S, dtype=np.int64)
    for s in range(S):
        for p in range(2):
            ns = next_state[s, p]
            if n_in[ns] == 2:
                raise ValueError("a trellis state must have exactly two incoming transitions")
            src[ns, n_in[ns]] = s
            col[ns, n_in[ns]] = 2 * quantizer[s] + p
            n_in[ns] += 1  # 2 S transitions, none beyond a state's second: every state has two
    return src, col


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", parallel=True)
def viterbi(r: np.ndarray, weight: np.ndarray, scale_idx: np.ndarray, delta: float, lmbda: float,
            next_state: np.ndarray, quantizer: np.ndarray, n_scales: int, bits_p: np.ndarray,
            bits_m: np.ndarray, m_offset: np.ndarray, m_len: np.ndarray) -> np.ndarray:
    """:func:`viterbi_reference`'s indices, faster: the rows (independent trellises) in blocks across
    numba's threads (``numba.set_num_threads``; :func:`threads`), the candidates pruned (:func:`_best`),
    and each state's two incoming transitions compared without a branch,

        cost'[ns] = min(cost[s_0] + J_{c_0}, cost[s_1] + J_{c_1}),

    the first of the two winning ties, as in the reference's visiting order (:func:`incoming`)."""
    T, L = r.shape
    S = next_state.shape[0]
    src, col = incoming(next_state, quantizer)
    out = np.zeros((T, L), dtype=np.int32)
    blocks = (T + BLOCK - 1) // BLOCK
    for b in numba.prange(blocks):
        cost = np.empty(S)
        new = np.empty(S)
        jc = np.empty(4)  # best cost and index per column 2 q + parity
        kc = np.empty(4, dtype=np.int32)
        back_s = np.empty((L, S), dtype=np.int8)
        back_k = np.empty((L, S), dtype=np.int32)
        for t in range(b * BLOCK, min(T, (b + 1) * BLOCK)):
            cost[:] = np.inf
            cost[0] = 0.0
            for j in range(L):
                ri, wi, si = r[t, j], weight[t, j], scale_idx[t, j]
                jc[0], kc[0], jc[1], kc[1] = _best(ri, wi, si, 0, delta, lmbda, n_scales, bits_p, bits_m, m_offset,
                                                   m_len)
                jc[2], kc[2], jc[3], kc[3] = _best(ri, wi, si, 1, delta, lmbda, n_scales, bits_p, bits_m, m_offset,
                                                   m_len)
                for ns in range(S):
                    s0, s1, c0, c1 = src[ns, 0], src[ns, 1], col[ns, 0], col[ns, 1]
                    v0 = cost[s0] + jc[c0]
                    v1 = cost[s1] + jc[c1]
                    second = v1 < v0
                    new[ns] = v1 if second else v0
                    back_s[j, ns] = s1 if second else s0
                    back_k[j, ns] = kc[c1] if second else kc[c0]
                for s in range(S):
                    cost[s] = new[s]
            s = int(np.argmin(cost))
            for j in range(L - 1, -1, -1):
                out[t, j] = back_k[j, s]
                s = back_s[j, s]
    return out


def threads(n: int | None = None) -> int:
    """Set the search's thread count (``n``, else ``LIC_TCQ_THREADS``, else every core); returns it."""
    n = n or int(os.environ.get("LIC_TCQ_THREADS", "0")) or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    return numba.get_num_threads()


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def states(indices: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """State of every element (before it is coded) for rows of indices starting in state 0."""
    T, L = indices.shape
    out = np.empty((T, L), dtype=np.int64)
    for t in range(T):
        s = 0
        for j in range(L):
            out[t, j] = s
            s = next_state[s, indices[t, j] & 1]
    return out


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def path_bits(indices: np.ndarray, scale_idx: np.ndarray, next_state: np.ndarray, quantizer: np.ndarray,
              n_scales: int, bits_p: np.ndarray, bits_m: np.ndarray, m_offset: np.ndarray,
              m_len: np.ndarray) -> float:
    """Total code length of given index rows, as :func:`viterbi` counts it."""
    T, L = indices.shape
    total = 0.0
    for t in range(T):
        s = 0
        for j in range(L):
            k = indices[t, j]
            total += _bits(k, quantizer[s], scale_idx[t, j], n_scales, bits_p, bits_m, m_offset, m_len)
            s = next_state[s, k & 1]
    return total
