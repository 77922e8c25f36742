"""Where the error comes from: the transform or the quantizer (issue 7's "why"), real bitstreams.

For each model of a pipeline's baselines (``usq-base``, ``tcq-base``) and each way of coding it,
every image is coded for real and three PSNRs are taken on 8-bit images:

- ``psnr``: the decoded image against the original (what the RD curves show);
- ``ceil``: ``g_s(g_a(x))`` with no quantization at all against the original: the transform's limit;
- ``qpsnr``: the decoded image against ``g_s(g_a(x))``: the error the quantizer alone adds.

``coh`` is the pixel error ``||g_s(y_hat) - g_s(y)||^2`` over its independent-error prediction
``sum_i G_i e_i^2`` (``G_i`` the squared Jacobian column norms of ``g_s`` at the USQ point,
Hutchinson, 8 probes): 1 when latent errors add up independently, above 1 when they add
coherently, which a per-channel weighting of the trellis cannot see.

Then BD-rates against the USQ-trained models coded with USQ, on ``psnr`` and on ``qpsnr``.

    python experiments/tcq_headroom.py --models artifacts/models [--images DIR] [--lambdas 0 0.02 0.1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lic.bdrate import bd_rate_curves
from lic.codec import Codec, pad
from lic.data import default_images, list_images, load_image, to_tensor, to_uint8
from lic.errors import LicError
from lic.evaluate import psnr


@torch.inference_mode()
def measure(codec: Codec, images: list[Path], codings: dict[str, dict]) -> dict[str, dict[str, float]]:
    m = codec.model
    acc: dict[str, list[tuple[float, ...]]] = {name: [] for name in codings}
    for path in images:
        rgb, _ = load_image(path)
        h, w = rgb.shape[:2]
        a = m.analyze(pad(to_tensor(rgb)))
        y, means, scales = a["y"], a["means"], a["scales"]
        x_y = m.g_s(y)
        ceiling = to_uint8(x_y[..., :h, :w])
        gains = m.synthesis_gains(torch.round(y - means) + means, probes=8)
        for name, params in codings.items():
            q = codec.quantizer(**params)
            data = codec.encode(rgb, quantizer=q).data
            recon = codec.decode(data)
            y_hat = q.dequantize(q.quantize(y, means, scales), means)
            coh = float((m.g_s(y_hat) - x_y).pow(2).sum() / (gains * (y_hat - y).pow(2)).sum())
            acc[name].append((len(data) * 8 / (h * w), psnr(recon, rgb), psnr(ceiling, rgb), psnr(recon, ceiling), coh))
    keys = ("bpp", "psnr", "ceil", "qpsnr", "coh")
    return {name: {k: float(np.mean([r[i] for r in rows])) for i, k in enumerate(keys)} for name, rows in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, required=True, help="folder with usq-base/ and tcq-base/ checkpoints")
    ap.add_argument("--images", type=Path, help="images (default: the bundled held-out set)")
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.02, 0.1], help="lambda_tcq values")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = list_images(args.images or default_images("test"))
    curves: dict[str, list[dict[str, float]]] = {}
    print(f"{'model':18s} {'coding':14s} {'bpp':>7s} {'psnr':>6s} {'ceil':>6s} {'qpsnr':>6s} {'coh':>5s}")
    for family in ("usq-base", "tcq-base"):
        ckpts = sorted((args.models / family).glob("*.ckpt"))
        if not ckpts:
            raise LicError(f"{args.models / family}: no checkpoints")
        codings = {"usq": {"name": "usq"}}
        if family == "tcq-base":
            codings |= {f"tcq l={lt:g}": {"name": "tcq", "lambda_tcq": lt} for lt in args.lambdas}
        for ckpt in ckpts:
            for name, r in measure(Codec.from_checkpoint(ckpt), images, codings).items():
                curves.setdefault(f"{family} {name}", []).append(r)
                print(f"{family + '/' + ckpt.stem:18s} {name:14s} {r['bpp']:7.4f} {r['psnr']:6.2f} {r['ceil']:6.2f} "
                      f"{r['qpsnr']:6.2f} {r['coh']:5.2f}", flush=True)
    anchor = curves.pop("usq-base usq")
    print("\nBD-rate against usq-base coded with USQ (pchip): image PSNR | quantization-only PSNR")
    for name, pts in curves.items():
        cells = []
        for metric in ("psnr", "qpsnr"):
            try:
                cells.append(f"{bd_rate_curves(([p['bpp'] for p in anchor], [p[metric] for p in anchor]), ([p['bpp'] for p in pts], [p[metric] for p in pts])):+.2f}%")
            except LicError:  # quality does not rise with rate on this curve
                cells.append("undefined")
        print(f"  {name:20s} {cells[0]:>9s} | {cells[1]}")


if __name__ == "__main__":
    try:
        main()
    except LicError as exc:
        raise SystemExit(f"error: {exc}") from None
