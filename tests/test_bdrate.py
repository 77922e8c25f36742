"""BD-rate against itself and against a curve with a known rate saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lic.bdrate import bd_rate, bd_rate_curves
from lic.errors import LicError

RATES = [0.15, 0.3, 0.6, 1.2, 2.0]
PSNRS = [27.0, 30.0, 33.0, 36.0, 38.5]


def _write(path: Path, rates: list[float], psnrs: list[float]) -> Path:
    path.write_text(json.dumps({"name": path.stem, "results": {"bpp": rates, "psnr-rgb": psnrs}}))
    return path


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_curve_against_itself_is_zero(tmp_path: Path, method: str) -> None:
    a = _write(tmp_path / "a.json", RATES, PSNRS)
    assert bd_rate(a, a, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.9, 0.75, 1.2])
def test_scaled_rates_give_known_bd_rate(tmp_path: Path, factor: float) -> None:
    a = _write(tmp_path / "a.json", RATES, PSNRS)
    b = _write(tmp_path / "b.json", [r * factor for r in RATES], PSNRS)
    assert bd_rate(a, b) == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_shifted_quality_saves_rate(tmp_path: Path) -> None:
    # A curve 0.5 dB better everywhere needs less rate for the same quality.
    assert bd_rate_curves((RATES, PSNRS), (RATES, [p + 0.5 for p in PSNRS])) < 0


def test_single_point_is_refused(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", RATES[:1], PSNRS[:1])
    with pytest.raises(LicError, match="at least 2"):
        bd_rate(a, a)


def test_disjoint_curves_are_refused() -> None:
    with pytest.raises(LicError, match="no quality range"):
        bd_rate_curves((RATES, PSNRS), (RATES, [p + 20 for p in PSNRS]))


def test_non_monotonic_curve_is_a_clear_error() -> None:
    with pytest.raises(LicError, match="does not rise"):
        bd_rate_curves((RATES, PSNRS), (RATES, [27.0, 31.0, 30.0, 36.0, 38.5]))
