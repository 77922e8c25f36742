"""Bjøntegaard delta rate between two RD curves in CompressAI's results format, and its confidence.

Uses the ``bjontegaard`` package with piecewise cubic Hermite (pchip) interpolation by default;
``akima`` needs four points or more. Negative values mean the test curve saves rate.

:func:`bd_rate_ci` adds a paired bootstrap over images: each resample draws ``n`` of the ``n``
images both curves share, with replacement, averages each curve over them (bpp and quality per
rate point, as the results JSON does) and takes the BD-rate of those means; the interval is the
percentile interval of the resamples. It also gives each image's own BD-rate.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import bjontegaard
import numpy as np
import pandas as pd

from lic.config import BD_METHODS
from lic.errors import LicError

RESAMPLES, LEVEL, SEED = 1000, 0.95, 0  # the bootstrap's defaults: fixed, so reports are reproducible
_CSV_COLUMNS = {"psnr-rgb": "psnr_rgb", "ms-ssim-rgb": "ms_ssim_rgb"}  # metric -> per-image CSV column

METHODS = BD_METHODS


def _checked(points: int | None) -> int | None:
    """``points`` (None: every point), refused below 2."""
    if points is not None and points < 2:
        raise LicError(f"a BD-rate needs at least 2 rate points per curve, not {points}")
    return points


def load_curve(path: Path, metric: str = "psnr-rgb", points: int | None = None) -> tuple[list[float], list[float]]:
    """``(bpp, metric)`` of a results JSON, sorted by rate, without NaN points; with ``points``, only
    that many of the lowest rate (a curve's lower part, where its top point folds)."""
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
    pairs = pairs[:_checked(points)]
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
        if not all(math.isfinite(v) for v in [*rates, *dists]):
            raise LicError(f"the {name} curve has undefined points (e.g. MS-SSIM of images under "
                           "161 pixels a side); BD-rate is undefined")
        if any(b <= a for a, b in zip(dists, dists[1:])):
            raise LicError(f"the {name} curve's quality does not rise with its rate "
                           f"({', '.join(f'{r:.3f} bpp: {d:.2f}' for r, d in zip(rates, dists))}); BD-rate is undefined")
    lo, hi = max(min(anchor[1]), min(test[1])), min(max(anchor[1]), max(test[1]))
    if lo >= hi:
        raise LicError(f"the curves share no quality range (anchor {min(anchor[1]):.2f}..{max(anchor[1]):.2f}, "
                       f"test {min(test[1]):.2f}..{max(test[1]):.2f})")
    return float(bjontegaard.bd_rate(anchor[0], anchor[1], test[0], test[1], method=method,
                                     require_matching_points=False, min_overlap=0))


def bd_rate(anchor: Path, test: Path, metric: str = "psnr-rgb", method: str = "pchip",
            points: int | None = None) -> float:
    """BD-rate in percent of results file ``test`` against results file ``anchor`` (over each curve's
    ``points`` lowest-rate points, if given)."""
    return bd_rate_curves(load_curve(anchor, metric, points), load_curve(test, metric, points), method)


class PerImage(NamedTuple):
    """One family's per-image curves: ``rates[point, image]`` and ``quality[point, image]``."""

    images: list[str]
    rates: np.ndarray
    quality: np.ndarray


def has_per_image(results: Path) -> bool:
    """Whether ``lic eval``'s per-image CSV lies beside a results JSON (published curves have none)."""
    return Path(results).with_suffix(".csv").is_file()


def load_per_image(results: Path, metric: str = "psnr-rgb", points: int | None = None) -> PerImage:
    """The per-image curves of a results JSON, read from the CSV ``lic eval`` writes beside it; with
    ``points``, only that many of the lowest mean rate (as :func:`load_curve`)."""
    path = Path(results).with_suffix(".csv")
    try:
        rows = pd.read_csv(path)
        rates = rows.pivot(index="point", columns="image", values="bpp")
        quality = rows.pivot(index="point", columns="image", values=_CSV_COLUMNS[metric])
    except FileNotFoundError:
        raise LicError(f"{path}: no per-image results beside {Path(results).name} (lic eval writes them; a "
                       "published curve has none: without --ci, lic bdrate compares the mean curves)") from None
    except (KeyError, ValueError, pd.errors.ParserError) as exc:
        raise LicError(f"{path}: not a per-image results CSV ({type(exc).__name__}: {exc})") from None
    if _checked(points) is not None:  # as load_curve: points of a defined mean, then the lowest rates
        mean_rate = rates.mean(axis=1)
        keep = mean_rate[mean_rate.notna() & quality.mean(axis=1).notna()].sort_values().index[:points]
        rates, quality = rates.loc[keep], quality.loc[keep]
    return PerImage(list(rates.columns), rates.to_numpy(float), quality[rates.columns].to_numpy(float))


@dataclass(frozen=True)
class Interval:
    """A BD-rate (of the mean curves), its bootstrap interval, and the per-image BD-rates."""

    value: float
    low: float
    high: float
    per_image: dict[str, float]  # nan where an image's own curves give no BD-rate
    resamples: int
    failed: int  # resamples whose mean curves gave no BD-rate (left out)
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """The interval lies on one side of 0: the difference is distinguishable from none."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _mean_curve(c: PerImage, idx: np.ndarray) -> tuple[list[float], list[float]]:
    with warnings.catch_warnings():  # a metric undefined for every image (nan) stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        r, q = np.nanmean(c.rates[:, idx], axis=1), np.nanmean(c.quality[:, idx], axis=1)
    order = np.argsort(r)
    return list(r[order]), list(q[order])


def bd_rate_ci(anchor: PerImage, test: PerImage, method: str = "pchip", resamples: int = RESAMPLES,
               level: float = LEVEL, seed: int = SEED) -> Interval:
    """Paired bootstrap over the images both families coded (see the module docstring)."""
    shared = sorted(set(anchor.images) & set(test.images))
    if len(shared) < 2:
        raise LicError(f"a bootstrap over images needs at least 2 images in both curves, found {len(shared)}")
    a = PerImage(shared, *(m[:, [anchor.images.index(i) for i in shared]] for m in anchor[1:]))
    t = PerImage(shared, *(m[:, [test.images.index(i) for i in shared]] for m in test[1:]))
    def bd(idx: np.ndarray) -> float:
        try:
            return bd_rate_curves(_mean_curve(a, idx), _mean_curve(t, idx), method)
        except LicError:
            return math.nan

    every = np.arange(len(shared))
    value = bd_rate_curves(_mean_curve(a, every), _mean_curve(t, every), method)
    per_image = {name: bd(every[k : k + 1]) for k, name in enumerate(shared)}
    rng = np.random.default_rng(seed)
    draws = [v for v in (bd(rng.integers(0, len(shared), len(shared))) for _ in range(resamples)) if math.isfinite(v)]
    if not draws:
        raise LicError("no bootstrap resample gave a BD-rate (the mean curves never rise with their rate)")
    low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(value, float(low), float(high), per_image, resamples, resamples - len(draws), level)
