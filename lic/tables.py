"""Entropy tables fitted to a quantizer's own decisions (entropy-constrained design).

A quantizer's analytic tables give each index the Gaussian mass of its nearest-neighbour cell. A
search with a rate term (RDOQ, TCQ with ``lambda > 0``) moves mass toward zero, so those tables
charge its decisions more bits than their entropy. Fitting alternates the two halves of
entropy-constrained quantizer design to a fixed point:

1. the search chooses indices under the current tables' code lengths;
2. each table row becomes the smoothed frequencies of the symbols coded with it,

    p_row(j) = (n_row(j) + a * p0_row(j)) / (n_row + a),

``p0`` the analytic row (the prior: every index stays codable), ``a`` pseudo-counts.

Every quantizer codes symbols ``(symbols, rows)`` against one table set (:meth:`symbols_of`): USQ
and RDOQ code ``k`` in the row of its scale bin; TCQ codes the parity in a row per (quantizer,
scale bin) and ``k >> 1`` in a row per (quantizer, parity, scale bin).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from compressai.entropy_models import EntropyModel
from torch import Tensor

from lic.compat import cdf_tables, pmf_to_quantized_cdf, set_cdf_tables
from lic.quantizers import Quantizer
from lic.quantizers.tcq import TCQ

PSEUDO_COUNTS = 32.0  # weight of the analytic row in a fitted one, in symbols


def table_model(q: Quantizer) -> EntropyModel:
    """The entropy model whose CDF tables ``q`` codes with."""
    return q.tables if isinstance(q, TCQ) else q.conditional


def symbols_of(q: Quantizer, indices: Tensor, scales: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(symbols, rows)``: every value ``q`` entropy-codes for ``indices``, and its table row."""
    if isinstance(q, TCQ):
        k = q.to_rows(indices.long())
        p_rows, m_rows = q._symbol_rows(k, q.to_rows(q.table_indexes(scales).long()))
        return np.concatenate([(k & 1).ravel(), (k >> 1).ravel()]), np.concatenate([p_rows.ravel(), m_rows.ravel()])
    return indices.long().cpu().numpy().ravel(), q.table_indexes(scales).long().cpu().numpy().ravel()


def row_pmfs(model: EntropyModel) -> list[np.ndarray]:
    """Each row's probabilities of its regular symbols and, last, of its escape."""
    cdf, lengths, _ = cdf_tables(model)
    scale = float(1 << model.entropy_coder_precision)
    return [np.diff(row[: n].numpy().astype(np.float64)) / scale for row, n in zip(cdf, lengths.tolist())]


def fitted_model(model: EntropyModel, symbols: np.ndarray, rows: np.ndarray,
                 pseudo: float = PSEUDO_COUNTS) -> EntropyModel:
    """A copy of ``model`` whose rows are the smoothed frequencies of ``symbols`` in their ``rows``
    (same rows, offsets and lengths; a value outside a row's range counts as its escape)."""
    _, lengths, offsets = cdf_tables(model)
    n = lengths.numpy().astype(np.int64) - 2
    sym = symbols.astype(np.int64) - offsets.numpy().astype(np.int64)[rows]
    sym = np.where((sym >= 0) & (sym < n[rows]), sym, n[rows])  # the escape column
    width = int(n.max()) + 1
    counts = np.bincount(rows.astype(np.int64) * width + sym, minlength=len(n) * width).reshape(len(n), width)
    cdfs = []
    for r, prior in enumerate(row_pmfs(model)):
        c = counts[r, : n[r] + 1]
        pmf = (c + pseudo * prior) / (c.sum() + pseudo)
        cdfs.append(pmf_to_quantized_cdf(torch.tensor(pmf), model.entropy_coder_precision))
    cdf = torch.zeros(len(n), int(lengths.max()), dtype=torch.int32)
    for r, c in enumerate(cdfs):
        cdf[r, : len(c)] = c
    fitted = copy.copy(model)
    fitted.__dict__.pop("_lic_tables", None)  # CdfTables.of's cache of the old rows
    with torch.inference_mode(False):
        fitted._buffers = dict(model._buffers)  # its own table buffers; the rest is shared
        set_cdf_tables(fitted, cdf, lengths.clone(), offsets.clone())
    return fitted


def with_tables(q: Quantizer, model: EntropyModel) -> Quantizer:
    """A copy of ``q`` that codes with ``model``'s tables (and charges their code lengths)."""
    out = copy.copy(q)
    for cached in ("tables", "_lengths", "_parity_tables", "_tables"):
        out.__dict__.pop(cached, None)
    if isinstance(q, TCQ):
        out.__dict__["tables"] = model
    else:
        out.conditional = model
    return out


def fit(q: Quantizer, y: Tensor, means: Tensor, scales: Tensor, iterations: int = 4,
        pseudo: float = PSEUDO_COUNTS) -> Quantizer:
    """``q`` with tables fitted to its own decisions on ``(y, means, scales)``: ``iterations`` rounds
    of search, then refit (module docstring)."""
    fitted, analytic = q, table_model(q)
    for _ in range(iterations):
        k = fitted.quantize(y, means, scales)
        fitted = with_tables(q, fitted_model(analytic, *symbols_of(fitted, k, scales), pseudo=pseudo))
    return fitted
