"""Entropy coding of integer indices with CompressAI's rANS and per-symbol CDF tables.

A table set is what ``EntropyModel.update()`` leaves behind (:func:`lic.compat.cdf_tables`): one row
per (quantizer, scale bin). Each symbol names its row by an index.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from compressai.entropy_models import EntropyModel
from torch import Tensor

from lic.compat import RansDecoder, RansEncoder, cdf_tables, set_cdf_tables
from lic.errors import LicError

# what a search charges for an escape's bypass-coded value: CompressAI's rANS writes it in 4-bit chunks
# after a 4-bit count (8 bits for a value of one chunk; more for far ones, rare in 6-sigma tables)
ESCAPE_BYPASS_BITS = 8.0


def table_digest(model: EntropyModel) -> int:
    """CRC-32 of ``model``'s CDF tables and offsets: encoder and decoder must agree on them exactly."""
    cdf, _, offsets = cdf_tables(model)
    return zlib.crc32(cdf.cpu().numpy().tobytes() + offsets.cpu().numpy().tobytes())


def with_cdf_tables(model: EntropyModel, cdf: Tensor, lengths: Tensor, offsets: Tensor) -> EntropyModel:
    """A copy of ``model`` coding with the given tables (its own table buffers; the rest shared), marked
    ``lic_fitted``: tables fitted to a quantizer's decisions (:mod:`lic.tables`)."""
    out = copy.copy(model)
    out.__dict__.pop("_lic_tables", None)  # CdfTables.of's cache of the old rows
    with torch.inference_mode(False):
        out._buffers = dict(model._buffers)
        set_cdf_tables(out, cdf, lengths, offsets)
    out.__dict__["lic_fitted"] = True
    return out


@dataclass(frozen=True)
class CdfTables:
    """CDF tables as the rANS coder takes them (Python lists), built once per model update."""

    cdfs: list[list[int]]
    lengths: list[int]
    offsets: list[int]

    @classmethod
    def of(cls, model: EntropyModel) -> "CdfTables":
        """The tables of ``model``, cached on it until its CDF buffer changes."""
        cdf, cdf_lengths, cdf_offsets = cdf_tables(model)
        if cdf.numel() == 0:
            raise LicError("entropy model has no CDF tables; the checkpoint was saved before update()")
        key = (cdf.data_ptr(), 0 if cdf.is_inference() else cdf._version, tuple(cdf.shape))
        cached = getattr(model, "_lic_tables", None)
        if cached is None or cached[0] != key:
            lengths = cdf_lengths.reshape(-1).int().tolist()
            # rows trimmed to their own length: the coder reads no further, and the lists cross
            # into C++ on every call
            tables = cls(
                [row[:n] for row, n in zip(cdf.tolist(), lengths)],
                lengths,
                cdf_offsets.reshape(-1).int().tolist(),
            )
            object.__setattr__(model, "_lic_tables", (key, tables))
        return model._lic_tables[1]


def encode_symbols(symbols: torch.Tensor, indexes: torch.Tensor, tables: CdfTables) -> bytes:
    """rANS-code ``symbols`` (ints), each with the table row ``indexes`` names."""
    return RansEncoder().encode_with_indexes(
        symbols.reshape(-1).int().tolist(),
        indexes.reshape(-1).int().tolist(),
        tables.cdfs,
        tables.lengths,
        tables.offsets,
    )


class StreamDecoder:
    """A rANS stream read in parts: each :meth:`read` decodes the next symbols, with their tables."""

    def __init__(self, data: bytes) -> None:
        self.rans = RansDecoder()
        self.rans.set_stream(data)

    def read(self, indexes: torch.Tensor, tables: CdfTables) -> torch.Tensor:
        """The next ``len(indexes)`` symbols (int32), each with the table row ``indexes`` names."""
        values = self.rans.decode_stream(indexes.reshape(-1).int().tolist(), tables.cdfs, tables.lengths,
                                         tables.offsets)
        return torch.tensor(values, dtype=torch.int32)


def symbol_bits(model: EntropyModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the rANS coder spends on each symbol of each row of ``model``'s tables, as an RD search
    reads it: ``bits[row, j] = -log2 P(j)`` from the quantized CDF (64 where ``P = 0``), the escape
    column ``n[row]`` plus :data:`ESCAPE_BYPASS_BITS`; the rows' ``offsets`` and regular symbol
    counts ``n``. A value ``v`` is symbol ``v - offsets[row]``; outside ``[0, n)`` it escapes."""
    cdf_t, lengths, offsets = (t.cpu() for t in cdf_tables(model))
    cdf = cdf_t.numpy().astype(np.float64)
    n = lengths.numpy().astype(np.int64) - 2
    prob = np.diff(cdf, axis=1) / float(1 << model.entropy_coder_precision)
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = -np.log2(np.where(prob > 0, prob, np.nan))
    bits = np.nan_to_num(bits, nan=64.0)
    bits[np.arange(len(n)), n] += ESCAPE_BYPASS_BITS
    return bits, offsets.numpy().astype(np.int64), n
