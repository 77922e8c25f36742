"""Why phase 4 may not hold on unseen images: its rate and PSNR on the training patches against
held-out images, and the rate its loss sees against the rate the coder pays.

For each checkpoint (the base, its phase-4 model, and any others) and each of two sets (the latent
dataset's training patches; the held-out photos, padded to a multiple of 64), in bits per pixel:

- ``loss``: ``-log2 P(k | scales)`` with float32 ``h_s`` and continuous scales, as training sees it;
- ``table``: the same indices at the coder's scales (each snapped up to its scale-table bin);
- ``stream``: the real bitstream (float64 ``h_s``, snapped means, the table's CDFs), ``y`` only;

the PSNR of ``g_s(y_hat)``, and ``|y-mu|``, the mean distance of ``y`` from the ``means`` it is
coded with (a context model's per slice): phase 4 moving it away from the base's is ``means``
drifting. ``stream / loss`` above 1 is rate the loss does not see; a gap between the two sets that
grows from base to phase 4 is overfitting to the training patches.

    python experiments/phase4_diagnosis.py --latents artifacts/latents/usq-q4.zarr \\
        artifacts/models/usq-base/q4.ckpt artifacts/models/usq-hyper-decoder/q4.ckpt [--images DIR]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from lic.checkpoint import load_checkpoint
from lic.codec import pad
from lic.data import default_images, list_images, load_image, to_tensor
from lic.latents import LatentDataset
from lic.models import Hyperprior


@torch.no_grad()
def measure(model: Hyperprior, quantizer_name: str, params: dict, x: torch.Tensor) -> dict[str, float]:
    """Bits of ``y`` per pixel three ways (see the module docstring), PSNR and ``|y-mu|``, for a batch ``x``."""
    q = model.quantizer_for(quantizer_name, **params)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    a = model.analyze(x)
    c = model.code_latents(a, q)  # a context model's means and scales, slice by slice
    k, scales = c["indices"], c["scales"].float()
    table = model.gaussian_conditional.scale_table[q.table_indexes(scales).long()].to(scales)
    out = model.compress(x, q)
    x_hat = model.g_s(out["y_hat"]).clamp(0, 1)
    mse = float(torch.mean((x_hat - x) ** 2))
    return {"loss": float(-torch.log2(q.likelihoods(k, scales)).sum()) / pixels,
            "table": float(-torch.log2(q.likelihoods(k, table)).sum()) / pixels,
            "stream": 8 * sum(len(s) for s in out["strings"][0]) / pixels,
            "psnr": -10 * math.log10(mse), "drift": float((a["y"] - c["means"]).abs().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="+", help="the base first, then retrained models")
    ap.add_argument("--latents", type=Path, required=True, help="the dataset phase 4 trained on")
    ap.add_argument("--images", type=Path, default=None, help="held-out photos (default: the bundled test split)")
    ap.add_argument("--patches", type=int, default=64, help="training patches to measure")
    args = ap.parse_args()
    data = LatentDataset(args.latents, ("x",))
    name, params = data.attrs["quantizer"], data.attrs["quantizer_params"]
    (patches,) = data.batch(torch.arange(min(args.patches, len(data))))
    photos = [to_tensor(load_image(p)[0]) for p in list_images(args.images or default_images("test"))]
    print(f"{name.upper()}; y bits per pixel: loss (continuous scales), table (coder's scales), stream (real)")
    print(f"{'checkpoint':48s} {'set':9s} {'loss':>7s} {'table':>7s} {'stream':>7s} {'str/loss':>8s} {'PSNR':>6s} "
          f"{'|y-mu|':>6s}")
    for ckpt in args.checkpoints:
        model, _ = load_checkpoint(ckpt)
        rows = {"train": measure(model, name, params, patches)}
        held = [measure(model, name, params, pad(x)) for x in photos]  # per photo: sizes differ
        rows["held-out"] = {k: float(np.mean([h[k] for h in held])) for k in held[0]}
        for split, m in rows.items():
            print(f"{str(ckpt)[-48:]:48s} {split:9s} {m['loss']:7.4f} {m['table']:7.4f} {m['stream']:7.4f} "
                  f"{m['stream'] / m['loss']:8.4f} {m['psnr']:6.2f} {m['drift']:6.3f}")


if __name__ == "__main__":
    main()
