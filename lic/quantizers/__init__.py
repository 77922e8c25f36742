"""Latent quantizers behind one interface: USQ and TCQ."""

from __future__ import annotations

from typing import Any

from compressai.entropy_models import GaussianConditional

from lic.errors import LicError
from lic.quantizers.base import Quantizer
from lic.quantizers.tcq import TCQ
from lic.quantizers.usq import USQ

QUANTIZERS: dict[str, type[Quantizer]] = {cls.name: cls for cls in (USQ, TCQ)}


def make_quantizer(name: str, conditional: GaussianConditional, **params: Any) -> Quantizer:
    """The quantizer called ``name``, bound to ``conditional``."""
    try:
        cls = QUANTIZERS[name]
    except KeyError:
        raise LicError(f"unknown quantizer {name!r}; choose one of {sorted(QUANTIZERS)}") from None
    try:
        return cls(conditional, **params)
    except TypeError as exc:
        raise LicError(f"bad parameters for quantizer {name!r}: {exc}") from None


def quantizer_from_code(code: int, conditional: GaussianConditional, packed: bytes) -> Quantizer:
    """Rebuild a quantizer from a bitstream header's id and parameter bytes."""
    for cls in QUANTIZERS.values():
        if cls.code == code:
            return cls.from_packed(conditional, packed)
    raise LicError(f"bitstream names unknown quantizer id {code}")


__all__ = ["Quantizer", "USQ", "TCQ", "QUANTIZERS", "make_quantizer", "quantizer_from_code"]
