"""Entropy tables fitted to a quantizer's own decisions (entropy-constrained design).

A quantizer's analytic tables give each index the Gaussian mass of its nearest-neighbour cell. A
search with a rate term (RDOQ, TCQ with ``lambda > 0``) moves mass toward zero, so those tables
charge its decisions more bits than their entropy. Fitting alternates the two halves of
entropy-constrained quantizer design to a fixed point:

1. the search chooses indices under the current tables' code lengths;
2. each table row becomes the smoothed frequencies of the symbols coded with it,

    p_row(j) = (n_row(j) + a * p0_row(j)) / (n_row + a),

``p0`` the analytic row (the prior: every index stays codable), ``a`` pseudo-counts.

Every quantizer codes symbols ``(symbols, rows)`` against one table set
(:meth:`lic.quantizers.Quantizer.coded_symbols`): USQ and RDOQ code ``k`` in the row of its scale
bin; TCQ codes the parity in a row per (quantizer, scale bin) and ``k >> 1`` in a row per
(quantizer, parity, scale bin).

Fitted tables belong to a model (:class:`FittedTables`, its ``fitted_tables`` in the ``state_dict``),
so checkpoints, fingerprints and the staleness of latent datasets cover them; the model's
quantizer of that name codes with them (:meth:`lic.models.CodingModel.quantizer_for`), and its
streams carry their CRC-32, which a decoder without them refuses in one line. :func:`fit_model`
fits them to the model's own coding of training images (``lic tables fit``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import numpy as np
import torch
from compressai.entropy_models import EntropyModel
from torch import Tensor, nn

from lic.compat import cdf_tables, pmf_to_quantized_cdf
from lic.entropy import table_digest, with_cdf_tables
from lic.errors import LicError
from lic.quantizers import Quantizer

PSEUDO_COUNTS = 32.0  # weight of the analytic row in a fitted one, in symbols


def row_pmfs(model: EntropyModel) -> list[np.ndarray]:
    """Each row's probabilities of its regular symbols and, last, of its escape."""
    cdf, lengths, _ = (t.cpu() for t in cdf_tables(model))
    scale = float(1 << model.entropy_coder_precision)
    return [np.diff(row[: n].numpy().astype(np.float64)) / scale for row, n in zip(cdf, lengths.tolist())]


def fitted_model(model: EntropyModel, symbols: np.ndarray, rows: np.ndarray,
                 pseudo: float = PSEUDO_COUNTS) -> EntropyModel:
    """A copy of ``model`` whose rows are the smoothed frequencies of ``symbols`` in their ``rows``
    (same rows, offsets and lengths; a value outside a row's range counts as its escape)."""
    _, lengths, offsets = (t.cpu() for t in cdf_tables(model))
    n = lengths.numpy().astype(np.int64) - 2
    sym = symbols.astype(np.int64) - offsets.numpy().astype(np.int64)[rows]
    sym = np.where((sym >= 0) & (sym < n[rows]), sym, n[rows])  # the escape column
    width = int(n.max()) + 1
    counts = np.bincount(rows.astype(np.int64) * width + sym, minlength=len(n) * width).reshape(len(n), width)
    cdf = torch.zeros(len(n), int(lengths.max()), dtype=torch.int32)
    for r, prior in enumerate(row_pmfs(model)):
        c = counts[r, : n[r] + 1]
        row = pmf_to_quantized_cdf(torch.tensor((c + pseudo * prior) / (c.sum() + pseudo)), model.entropy_coder_precision)
        cdf[r, : len(row)] = row
    return with_cdf_tables(model, cdf, lengths.clone(), offsets.clone())


def fit(q: Quantizer, y: Tensor, means: Tensor, scales: Tensor, iterations: int = 4,
        pseudo: float = PSEUDO_COUNTS) -> Quantizer:
    """``q`` with tables fitted to its own decisions on ``(y, means, scales)``: ``iterations`` rounds
    of search, then refit (module docstring)."""
    fitted, analytic = q, q.table_model()
    for _ in range(iterations):
        k = fitted.quantize(y, means, scales)
        fitted = q.with_tables(fitted_model(analytic, *fitted.coded_symbols(k, scales), pseudo=pseudo))
    return fitted


def fit_model(model: Any, q: Quantizer, analyses: Iterable[dict[str, Any]], iterations: int = 4,
              pseudo: float = PSEUDO_COUNTS) -> Quantizer:
    """:func:`fit` on a model's own coding: each round codes every front half of ``analyses``
    (:meth:`CodingModel.analyze` of training images) as the coder does (:meth:`CodingModel.code_latents`,
    so a context model's means follow the decisions, and :meth:`CodingModel.coded_parts`, the parts
    its streams code apart), then refits the tables to every symbol coded."""
    analyses = list(analyses)
    fitted, analytic = q, q.table_model()
    for _ in range(iterations):
        coded = [model.code_latents(a, fitted) for a in analyses]
        pairs = [fitted.coded_symbols(k, s) for c in coded for k, s in model.coded_parts(c)]
        fitted = q.with_tables(fitted_model(analytic, np.concatenate([s for s, _ in pairs]),
                                            np.concatenate([r for _, r in pairs]), pseudo=pseudo))
    return fitted


def _same(a: Any, b: Any) -> bool:
    """Equal parameters, floats to 1e-9 (a derived search lambda recomputed on another machine)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


class FittedTables(nn.Module):
    """A quantizer's fitted tables as a model keeps them: the CDF rows, their lengths and offsets, the
    digest of the analytic tables they were fitted from (the scale table and TCQ's ``delta``), and the
    quantizer's parameters they were fitted for (JSON bytes). They apply to a quantizer of that name
    with those parameters and those analytic tables, and to no other."""

    def __init__(self, cdf: Tensor, lengths: Tensor, offsets: Tensor, analytic: int, params: Tensor) -> None:
        super().__init__()
        self.register_buffer("cdf", cdf.int())
        self.register_buffer("lengths", lengths.int())
        self.register_buffer("offsets", offsets.int())
        self.register_buffer("analytic", torch.tensor([analytic], dtype=torch.int64))
        self.register_buffer("params", params.to(torch.uint8))

    @classmethod
    def of(cls, fitted: Quantizer, analytic: Quantizer) -> "FittedTables":
        """The tables ``fitted`` codes with, fitted from ``analytic``'s."""
        with torch.inference_mode(False):  # buffers of the model, whatever mode the fit ran in
            cdf, lengths, offsets = (t.detach().cpu().clone() for t in cdf_tables(fitted.table_model()))
            params = torch.tensor(list(json.dumps(analytic.params(), sort_keys=True).encode()), dtype=torch.uint8)
        return cls(cdf, lengths, offsets, table_digest(analytic.table_model()), params)

    @classmethod
    def shaped(cls, state_dict: dict[str, Tensor], prefix: str) -> "FittedTables":
        """Empty tables of the shapes ``state_dict`` holds under ``prefix`` (to load them into)."""
        try:
            return cls(*(torch.zeros_like(state_dict[prefix + k]) for k in ("cdf", "lengths", "offsets")), 0,
                       torch.zeros_like(state_dict[prefix + "params"]))
        except KeyError as exc:
            raise LicError(f"fitted tables {prefix!r} lack {exc}") from None

    def fitted_for(self) -> dict[str, Any]:
        """The quantizer parameters the tables were fitted for."""
        return json.loads(bytes(self.params.cpu().tolist()).decode())

    def matches(self, q: Quantizer) -> bool:
        return table_digest(q.table_model()) == int(self.analytic[0]) and _same(self.fitted_for(), q.params())

    def apply(self, q: Quantizer) -> Quantizer:
        """``q`` coding with these tables (on the CPU, where the coder reads them)."""
        tables = (self.cdf.cpu(), self.lengths.cpu(), self.offsets.cpu())
        return q.with_tables(with_cdf_tables(q.table_model(), *tables))
