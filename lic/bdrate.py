"""Bjøntegaard delta rate between two RD curves in CompressAI's results format.

Uses the ``bjontegaard`` package with piecewise cubic Hermite (pchip) interpolation by default;
``akima`` needs four points or more. Negative values mean the test curve saves rate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import bjontegaard

from lic.errors import LicError

METHODS = ("pchip", "akima", "cubic")


def load_curve(path: Path, metric: str = "psnr-rgb") -> tuple[list[float], list[float]]:
    """``(bpp, metric)`` of a results JSON, sorted by rate, without NaN points."""
    path = Path(path)
    try:
        results = json.loads(path.read_text())["results"]
        pairs = sorted(
            (float(r), float(d)) for r, d in zip(results["bpp"], results[metric]) if not (math.isnan(r) or math.isnan(d))
        )
    except FileNotFoundError:
        raise LicError(f"{path}: no such results file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise LicError(f"{path}: not a results JSON with 'bpp' and {metric!r} ({type(exc).__name__}: {exc})") from None
    if len(pairs) < 2:
        raise LicError(f"{path}: a BD-rate needs at least 2 rate points, found {len(pairs)}")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def bd_rate_curves(anchor: tuple[list[float], list[float]], test: tuple[list[float], list[float]],
                   method: str = "pchip") -> float:
    """BD-rate in percent of ``test`` against ``anchor`` (each ``(rates, distortions)``)."""
    if method not in METHODS:
        raise LicError(f"unknown interpolation {method!r}; choose one of {METHODS}")
    if method == "akima" and min(len(anchor[0]), len(test[0])) < 4:
        raise LicError("akima interpolation needs at least 4 rate points per curve")
    for name, (rates, dists) in (("anchor", anchor), ("test", test)):
        if any(b <= a for a, b in zip(dists, dists[1:])):
            raise LicError(f"the {name} curve's quality does not rise with its rate "
                           f"({', '.join(f'{r:.3f} bpp: {d:.2f}' for r, d in zip(rates, dists))}); BD-rate is undefined")
    lo, hi = max(min(anchor[1]), min(test[1])), min(max(anchor[1]), max(test[1]))
    if lo >= hi:
        raise LicError(f"the curves share no quality range (anchor {min(anchor[1]):.2f}..{max(anchor[1]):.2f}, "
                       f"test {min(test[1]):.2f}..{max(test[1]):.2f})")
    return float(bjontegaard.bd_rate(anchor[0], anchor[1], test[0], test[1], method=method,
                                     require_matching_points=False, min_overlap=0))


def bd_rate(anchor: Path, test: Path, metric: str = "psnr-rgb", method: str = "pchip") -> float:
    """BD-rate in percent of results file ``test`` against results file ``anchor``."""
    return bd_rate_curves(load_curve(anchor, metric), load_curve(test, metric), method)
