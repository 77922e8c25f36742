"""Latent quantizers behind one interface, USQ, RDOQ (USQ's stream, rate-distortion optimized
decisions) and TCQ, and the one factory that builds them."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable

from compressai.entropy_models import GaussianConditional

from lic.config import QUANTIZER_CLASSES
from lic.errors import LicError
from lic.quantizers.base import Quantizer, Sensitivity
from lic.quantizers.rdoq import search_lambda

def quantizer_class(name: str) -> type[Quantizer]:
    """The class of the quantizer called ``name``."""
    try:
        module, _, cls = QUANTIZER_CLASSES[name][0].partition(":")
    except KeyError:
        raise LicError(f"unknown quantizer {name!r}; choose one of {sorted(QUANTIZER_CLASSES)}") from None
    return getattr(importlib.import_module(module), cls)


def __getattr__(attr: str) -> type[Quantizer]:
    """``USQ``, ``TCQ`` and ``RDOQ``, imported on first use."""
    if attr.lower() in QUANTIZER_CLASSES and attr.isupper():
        return quantizer_class(attr.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


class QuantizerParamsError(LicError):
    """Parameters that the named quantizer does not take (e.g. TCQ's given to USQ)."""


def make_quantizer(name: str, conditional: GaussianConditional, sensitivity: Sensitivity | None = None,
                   **params: Any) -> Quantizer:
    """The quantizer called ``name``, bound to ``conditional``; ``params`` as its ``params()`` gives them.

    Datasets made before ``weighting`` was one name record ``weighted: bool``; it is read as such.
    """
    cls = quantizer_class(name)
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
    name = next((n for n, (_, c) in QUANTIZER_CLASSES.items() if c == code), None)
    if name is None:
        raise LicError(f"bitstream names unknown quantizer id {code}")
    cls = quantizer_class(name)
    q = make_quantizer(cls.name, conditional, **cls.unpack_params(packed))
    for candidate in (q, *(apply(q) for apply in fitted)):
        if candidate.pack_params() == packed:
            return candidate
    raise LicError(f"{cls.name.upper()} tables differ from the encoder's (entropy tables fitted to another model "
                   "or fit, a different scale table or delta): decode with the checkpoint that coded the stream")


__all__ = ["Quantizer", "Sensitivity", "QuantizerParamsError", "make_quantizer", "quantizer_class",
           "quantizer_from_header", "search_lambda"]
