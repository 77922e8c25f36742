"""RDOQ with the method at other search lambdas: phase 2 and 3 on USQ's bases of a ``dvc repro``,
with RDOQ's lambda at ``--scales`` times the one derived from each base, evaluated with the same lambda.

For each scale ``F`` and each base ``artifacts/models/usq-base/<key>.ckpt``: a latent dataset made
with ``lambda_rdoq = F * search_lambda(base)`` (the profile's ``latents`` section), the decoder
retrained on it (the profile's ``retrain`` section), and the retrained model coded with RDOQ at the
same lambda on the profile's test images. Prints each scale's PSNR and MS-SSIM BD-rates against the
run's ``usq-decoder`` (phase 3 on USQ's latents) and ``usq-control`` (its control), with jackknife
intervals. Run from the root of a repository where ``dvc repro`` (``make demo``) has run:

    python experiments/rdoq_lambda_phase3.py --scales 1 0.25 --out /tmp/rdoq-phase3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from lic.bdrate import bd_rate_ci, load_per_image
from lic.checkpoint import load_checkpoint
from lic.config import LatentsConfig, RetrainConfig, RetrainPlan
from lic.data import list_images
from lic.errors import LicError
from lic.evaluate import evaluate_checkpoints
from lic.latents import make_latents
from lic.retrain import retrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", required=True, help="multiples of the derived lambda")
    ap.add_argument("--out", type=Path, required=True, help="folder for the datasets, models and results")
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the run's artifacts")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="the run's profile")
    args = ap.parse_args()
    p = yaml.safe_load(args.params.read_text())
    bases = sorted((args.artifacts / "models" / "usq-base").glob("*.ckpt"))
    if not bases:
        raise SystemExit(f"no USQ bases in {args.artifacts / 'models' / 'usq-base'}: run dvc repro first")
    train_images = args.artifacts / "data" / p["data"]["train_images"]
    test_files = list_images(args.artifacts / "data" / p["data"]["test_images"])
    latents_cfg = LatentsConfig(**{k: v for k, v in p["latents"].items() if k != "shards"})
    retrain_cfg = RetrainConfig(mode="decoder", **RetrainPlan.split(p["retrain"])[1])
    derived = {b.stem: load_checkpoint(b)[0].search_lambda() for b in bases}
    print("derived lambdas: " + ", ".join(f"{k} {v:.4f}" for k, v in derived.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for f in args.scales:
        rows = None
        for base in bases:
            lam = f * derived[base.stem]
            tag = f"x{f:g}-{base.stem}"
            data = make_latents(base, args.out / f"{tag}.zarr", train_images, "rdoq", {"lambda_rdoq": lam},
                                latents_cfg, resume=True, progress=False)
            model, work = args.out / f"{tag}.ckpt", args.out / f"{tag}.work.ckpt"
            if not model.exists():  # a killed run resumes its work file
                retrain(retrain_cfg, base, data, work, progress=False, resume=True)
                work.rename(model)
            ev = evaluate_checkpoints([model], test_files, "rdoq", name=f"rdoq-decoder x{f:g}", progress=False,
                                      quantizer_params={"lambda_rdoq": lam})
            if rows is None:
                rows = ev
            else:
                rows.rows.extend(ev.rows)
        results[f] = rows.write(args.out / f"rdoq-decoder-x{f:g}.json").with_suffix(".json")
    evals = args.artifacts / "eval"
    print("| RDOQ phase 3, lambda | against | BD-rate PSNR, % | BD-rate MS-SSIM, % |")
    print("|---|---|---|---|")
    for f, path in results.items():
        for anchor in ("usq-decoder", "usq-control", "rdoq-decoder"):
            cells = []
            for metric in ("psnr-rgb", "ms-ssim-rgb"):
                try:
                    cells.append(str(bd_rate_ci(load_per_image(evals / f"{anchor}.json", metric),
                                                load_per_image(path, metric))))
                except LicError as exc:
                    cells.append(f"n/a ({exc})")
            print(f"| x{f:g} | {anchor} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
