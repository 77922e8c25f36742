"""Results files (JSON and per-image CSV, as ``lic eval`` writes them) rebuilt from a report's
``per_image.csv``, so that ``lic bdrate --ci`` compares the curves of two pipeline runs, e.g. the
channel-context model against the hyperprior:

    python experiments/report_curves.py reports/demo/per_image.csv /tmp/hyperprior
    lic bdrate --ci /tmp/hyperprior/usq-base.json artifacts/eval/usq-base.json   # in a demo-context run
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

METRICS = {"bpp": "bpp", "psnr-rgb": "psnr_rgb", "ms-ssim-rgb": "ms_ssim_rgb"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("per_image", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(args.per_image, newline="") as f:
        for row in csv.DictReader(f):
            rows[row.pop("variant")].append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    for family, rs in rows.items():
        with open(args.out / f"{family}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, list(rs[0]))
            writer.writeheader()
            writer.writerows(rs)
        points = sorted({r["point"] for r in rs})
        results = {key: [sum(float(r[col]) for r in rs if r["point"] == p) / sum(r["point"] == p for r in rs)
                         for p in points] for key, col in METRICS.items()}
        (args.out / f"{family}.json").write_text(json.dumps({"name": family, "results": results, "points": points}))
    print(f"{len(rows)} families written to {args.out}")


if __name__ == "__main__":
    main()
