"""How much the model loses when photos move from the bundled training split to the held-out one.

Trains the demo profile's base model (params.yaml's recipe) on the training split with and without
the photos named by ``--move``, for each seed, then codes the held-out photos (none of them trained
on by any run) with real bitstreams and prints the rate-distortion cost the training minimizes,
``J = bpp + lambda * 255^2 * MSE``, per run and as a relative change against the full split. The
other half of the trade, how a BD-rate's interval narrows with more held-out photos, is
``experiments/ci_width.py``.

    python experiments/split.py --move astronaut chelsea flower grace_hopper --seeds 0 1
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml

from lic.config import ModelConfig, TrainConfig
from lic.data import default_images, list_images
from lic.evaluate import evaluate_checkpoints
from lic.train import train


def cost(ckpt: Path, probe: list[Path], lmbda: float) -> float:
    """Mean over the probe photos of ``bpp + lambda * 255^2 * MSE`` (MSE of [0, 1] pixels)."""
    rows = evaluate_checkpoints([ckpt], probe, progress=False).rows
    return statistics.fmean(r.bpp + lmbda * 255**2 * 10 ** (-r.psnr_rgb / 10) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--move", nargs="+", required=True, help="training photos (names without .png) to hold out")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, help="training steps (default: params.yaml's base steps)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--work", type=Path, default=Path("bench-split"),
                    help="where the runs' checkpoints stay (a finished run is reused)")
    args = ap.parse_args()

    p = yaml.safe_load(args.params.read_text())
    base, recipe = p["pretrain"]["base"], p["pretrain"]["recipe"]
    model = ModelConfig.from_params(p["model"], "usq", {})
    train_photos = list_images(default_images("train"))
    moved = [f for f in train_photos if f.stem in args.move]
    if len(moved) != len(args.move):
        raise SystemExit(f"not all of {args.move} are in the training split")
    probe = list_images(default_images("test"))
    splits = {"all": train_photos, f"without {len(moved)}": [f for f in train_photos if f not in moved]}
    print(f"probe: {len(probe)} held-out photos; base lambda {base['lmbda']}, "
          f"{args.steps or base['steps']} steps, seeds {args.seeds}")
    costs: dict[str, list[float]] = {}
    for split, files in splits.items():
        folder = args.work / split.replace(" ", "-")
        (folder / "images").mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (folder / "images" / f.name).exists():
                (folder / "images" / f.name).symlink_to(f.resolve())
        for seed in args.seeds:
            cfg = TrainConfig(lmbda=base["lmbda"], steps=args.steps or base["steps"], lr=base["lr"],
                              batch_size=recipe["batch_size"], patch_size=recipe["patch_size"],
                              min_scale=recipe["min_scale"], checkpoint_every=recipe["checkpoint_every"], seed=seed)
            ckpt = folder / f"seed{seed}-{cfg.steps}.ckpt"
            train(model, cfg, folder / "images", ckpt, resume=True, progress=False)
            costs.setdefault(split, []).append(cost(ckpt, probe, base["lmbda"]))
            print(f"{split:>12} ({len(files)} photos) seed {seed}: J = {costs[split][-1]:.4f}", flush=True)
    ref = statistics.fmean(costs["all"])
    for split, js in costs.items():
        spread = f" (seeds {min(js):.4f} to {max(js):.4f})" if len(js) > 1 else ""
        print(f"{split:>12}: mean J {statistics.fmean(js):.4f}{spread}, "
              f"{100 * (statistics.fmean(js) / ref - 1):+.2f}% against all")


if __name__ == "__main__":
    main()
