"""How often a BD-rate interval over few images covers the truth, by simulation: the check behind
:func:`lic.bdrate.bd_rate_ci`'s method.

Each draw makes ``n`` images. Image ``i`` has an anchor curve at four rate points, rate
``c_i * R_k`` and PSNR ``Q_k + d_i`` (its difficulty: ``c_i`` log-normal, ``d_i`` normal), and a test
curve at the same PSNR with rate ``(1 + e_i) * c_i * R_k``. The effects ``e_i = mu + s * z_i``, with
``z_i`` normal or Student's t(3), do not depend on the difficulty, so the BD-rate of the mean curves
over all images, the quantity that the reports estimate, is ``100 * mu``. An interval covers when it
contains it.

    python -m lic.coverage [--draws 1000] [--images 7] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

import numpy as np

from lic.bdrate import LEVEL, PerImage, bd_rate_ci, mean_bd, paired

RATES, PSNRS = np.array([0.1, 0.2, 0.4, 0.8]), np.array([26.0, 28.5, 31.0, 33.5])
MU, SPREAD = -0.05, 0.05  # the mean effect (-5% rate) and the effects' scale
DISTRIBUTIONS = ("normal", "t3")


def draw(rng: np.random.Generator, n: int, distribution: str) -> tuple[PerImage, PerImage]:
    """One draw of ``n`` images' anchor and test curves (see the module docstring)."""
    c, d = np.exp(rng.normal(0, 0.5, n)), rng.normal(0, 2.0, n)
    z = rng.standard_normal(n) if distribution == "normal" else rng.standard_t(3, n)
    e = MU + SPREAD * z
    names = [f"img{i}" for i in range(n)]
    quality = PSNRS[:, None] + d[None, :]
    anchor = RATES[:, None] * c[None, :]
    return PerImage(names, anchor, quality), PerImage(names, anchor * (1 + e[None, :]), quality)


def jackknife(anchor: PerImage, test: PerImage, rng: np.random.Generator) -> tuple[float, float]:
    """:func:`lic.bdrate.bd_rate_ci`'s interval, as the reports compute it."""
    iv = bd_rate_ci(anchor, test)
    return iv.low, iv.high


def percentile_bootstrap(resamples: int) -> Callable[[PerImage, PerImage, np.random.Generator], tuple[float, float]]:
    """The paired percentile bootstrap over images (``n`` of ``n`` with replacement), for comparison."""
    def interval(anchor: PerImage, test: PerImage, rng: np.random.Generator) -> tuple[float, float]:
        a, t = paired(anchor, test)
        n = len(a.images)
        values = [mean_bd(a, t, rng.integers(0, n, n)) for _ in range(resamples)]
        low, high = np.nanpercentile(values, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
        return float(low), float(high)
    return interval


def coverage(method: Callable, distribution: str, draws: int, images: int = 7, seed: int = 0) -> tuple[float, float]:
    """The share of ``draws`` seeded draws whose interval covers ``100 * MU``, and the mean width."""
    rng = np.random.default_rng(seed)
    hits, widths = 0, []
    for _ in range(draws):
        low, high = method(*draw(rng, images, distribution), rng)
        hits += low <= 100 * MU <= high
        widths.append(high - low)
    return hits / draws, float(np.mean(widths))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--images", type=int, default=7)
    ap.add_argument("--resamples", type=int, default=1000, help="the percentile bootstrap's resamples per interval")
    args = ap.parse_args(argv)
    print(f"{args.draws} draws of {args.images} images, true BD-rate {100 * MU:+.1f}%, nominal {LEVEL:.0%}")
    print(f"{'method':<24}{'effects':<10}{'coverage':>10}{'mean width':>12}")
    for name, method in (("jackknife t-interval", jackknife),
                         ("percentile bootstrap", percentile_bootstrap(args.resamples))):
        for distribution in DISTRIBUTIONS:
            share, width = coverage(method, distribution, args.draws, args.images)
            print(f"{name:<24}{distribution:<10}{share:>10.1%}{width:>11.2f}%")


if __name__ == "__main__":
    main()
