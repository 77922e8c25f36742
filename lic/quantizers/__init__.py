"""Latent quantizers behind one interface, USQ, RDOQ (USQ's stream, rate-distortion optimized
decisions) and TCQ, and the one factory that builds them."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from compressai.entropy_models import GaussianConditional

from lic.errors import LicError
from lic.quantizers.base import Quantizer, Sensitivity
from lic.quantizers.rdoq import RDOQ, search_lambda
from lic.quantizers.tcq import TCQ
from lic.quantizers.usq import USQ

# lic.config.QUANTIZER_NAMES; a header's quantizer id names the first with that code (RDOQ writes USQ streams)
QUANTIZERS: dict[str, type[Quantizer]] = {cls.name: cls for cls in (USQ, TCQ, RDOQ)}


class QuantizerParamsError(LicError):
    """Parameters that the named quantizer does not take (e.g. TCQ's given to USQ)."""


def make_quantizer(name: str, conditional: GaussianConditional, sensitivity: Sensitivity | None = None,
                   **params: Any) -> Quantizer:
    """The quantizer called ``name``, bound to ``conditional``; ``params`` as its ``params()`` gives them.

    Datasets made before ``weighting`` was one name record ``weighted: bool``; it is read as such.
    """
    try:
        cls = QUANTIZERS[name]
    except KeyError:
        raise LicError(f"unknown quantizer {name!r}; choose one of {sorted(QUANTIZERS)}") from None
    if "weighted" in params:
        weighted = params.pop("weighted")
        params.setdefault("weighting", "decoder" if weighted else "none")
    try:
        return cls(conditional, sensitivity, **params)
    except TypeError as exc:
        raise QuantizerParamsError(f"bad parameters for quantizer {name!r}: {exc}") from None


def quantizer_from_header(code: int, packed: bytes, conditional: GaussianConditional,
                          fitted: Iterable[Callable[[Quantizer], Quantizer]] = ()) -> Quantizer:
    """Rebuild a quantizer from a bitstream header's id and parameter bytes.

    The rebuilt quantizer must pack to the same bytes. TCQ's carry a digest of its tables, a USQ
    stream coded with fitted tables (RDOQ's) the digest of those: the quantizer codes with the
    Gaussian tables or with the tables that one of ``fitted`` installs (the checkpoint's fitted
    tables, :meth:`lic.tables.FittedTables.apply`) that match, and a stream coded with any other
    tables is refused.
    """
    cls = next((c for c in QUANTIZERS.values() if c.code == code), None)
    if cls is None:
        raise LicError(f"bitstream names unknown quantizer id {code}")
    q = make_quantizer(cls.name, conditional, **cls.unpack_params(packed))
    for candidate in (q, *(apply(q) for apply in fitted)):
        if candidate.pack_params() == packed:
            return candidate
    raise LicError(f"{cls.name.upper()} tables differ from the encoder's (entropy tables fitted to another model "
                   "or fit, a different scale table or delta): decode with the checkpoint that coded the stream")


__all__ = ["Quantizer", "Sensitivity", "USQ", "TCQ", "RDOQ", "QUANTIZERS", "QuantizerParamsError", "make_quantizer",
           "quantizer_from_header", "search_lambda"]
