"""How far a spatial context model's teacher-forced contexts drift in stale phase 4.

Stale phase 4 keeps the dataset's indices ``k`` and feeds the context model the dataset's ``y_hat``
(teacher forcing), while the decoder would see ``y_hat = means + level(k)`` under the new means.
Every retraining record (``<family>/<lambda>.json`` of ``dvc repro``) holds ``context_drift``: the mean
absolute difference between the two, every ``log_every`` steps. This prints its first and last
value per family and lambda, in latent units: USQ's step is 1, and so is that of each of TCQ's two
quantizers at its default delta 0.5 (step 2 * delta), so the drift reads as a share of one step.

    python experiments/context_drift.py [artifacts/models]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="?", type=Path, default=Path("artifacts/models"))
    args = ap.parse_args()
    rows = []
    for record in sorted(args.models.glob("*/*.json")):
        drift = json.loads(record.read_text()).get("context_drift")
        if drift:
            rows.append((record.parent.name, record.stem, drift))
    if not rows:
        raise SystemExit(f"{args.models}: no retraining record with context_drift (stale phase 4 of a spatial "
                         "context model)")
    print(f"{'family':28s} {'lambda':6s} {'steps':>5s} {'first':>8s} {'last':>8s} {'max':>8s}")
    for family, key, drift in rows:
        values = [v for _, v in drift]
        print(f"{family:28s} {key:6s} {drift[-1][0]:5d} {values[0]:8.4f} {values[-1]:8.4f} {max(values):8.4f}")


if __name__ == "__main__":
    main()
