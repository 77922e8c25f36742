"""How a BD-rate's interval (lic.bdrate's) narrows with the number of held-out photos.

For every comparison the report makes in ``EVAL_DIR`` (per-image CSVs, as the pipeline writes
them), draws subsets of ``m`` of the evaluated photos and prints the mean width of the 95%
interval (PSNR) for each ``m``, and the median over comparisons. The last columns give the SD of
the per-image BD-rates and the width ``2 * 1.96 * SD / sqrt(n)`` it predicts for ``--predict``
photos. The other half of the trade, what
the model loses from fewer training photos, is ``experiments/split.py``.

    python experiments/ci_width.py artifacts/eval
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from lic.bdrate import PerImage, bd_rate_ci, load_per_image
from lic.errors import LicError
from lic.comparisons import comparisons, load_results


def subset(c: PerImage, names: list[str]) -> PerImage:
    cols = [c.images.index(n) for n in names]
    return PerImage(names, c.rates[:, cols], c.quality[:, cols])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--draws", type=int, default=8, help="random subsets per size")
    ap.add_argument("--predict", type=int, nargs="+", default=[11, 24], help="photo counts to predict widths for")
    args = ap.parse_args()

    variants = list(load_results(args.eval_dir))
    curves = {v: load_per_image(args.eval_dir / f"{v}.json") for v in variants}
    images = sorted(set.intersection(*(set(c.images) for c in curves.values())))
    sizes = list(range(3, len(images) + 1))
    rng = np.random.default_rng(0)
    print(f"{len(images)} photos: {', '.join(images)}")
    print(f"{'comparison':<34}" + "".join(f"{f'm={m}':>8}" for m in sizes) + f"{'SD':>8}"
          + "".join(f"{f'n={n}':>8}" for n in args.predict))
    predicted: dict[int, list[float]] = {n: [] for n in args.predict}
    widths: dict[int, list[float]] = {m: [] for m in sizes}
    for test, anchor in comparisons(variants):
        row = []
        for m in sizes:
            draws = 1 if m == len(images) else args.draws
            w = []
            for _ in range(draws):
                names = sorted(rng.choice(images, m, replace=False))
                try:
                    iv = bd_rate_ci(subset(curves[anchor], names), subset(curves[test], names))
                    w.append(iv.high - iv.low)
                except LicError:
                    pass
            row.append(statistics.fmean(w) if w else float("nan"))
            widths[m].append(row[-1])
        sd = float(np.nanstd(list(iv.per_image.values()), ddof=1))
        for n in args.predict:
            predicted[n].append(2 * 1.96 * sd / n**0.5)
        print(f"{test + ' vs ' + anchor:<34}" + "".join(f"{v:8.2f}" for v in row + [sd] + [predicted[n][-1] for n in args.predict]),
              flush=True)
    print(f"{'median width (percentage points)':<34}" + "".join(f"{np.nanmedian(widths[m]):8.2f}" for m in sizes)
          + " " * 8 + "".join(f"{np.median(predicted[n]):8.2f}" for n in args.predict))


if __name__ == "__main__":
    main()
