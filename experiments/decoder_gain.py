"""Where the decoder's gain is measured: at ``y_hat = 0`` (what the derived search lambda uses) or
at the latents of real images.

The derived search lambda ``3 / (lmbda 255^2 G)`` (:func:`lic.quantizers.search_lambda`) takes
``G``, the mean of ``G_i = ||d g_s / d y_i||^2``, at an all-zero latent. ``g_s`` is not linear, so
the gain at the latents it decodes may differ. Per model, this prints ``G`` at zero, the mean
``G_i`` at each image's rounded latents ``y_hat`` (Hutchinson, ``--probes`` draws), their ratio
(the factor by which the derived lambda would shrink if it used the images' gain), and how the
per-channel sensitivity at the images correlates with the one at zero. A second table tests the
first-order model itself on RDOQ's decisions (at the derived lambda): the squared pixel error that
moving from rounding to RDOQ's indices adds, as the search predicts it (``sum_i G_i`` times the
change in ``dy_i^2``, at the rounded latents), as ``g_s`` gives it (against ``g_s(y)``), and
against the image itself (what PSNR sees):

    python experiments/decoder_gain.py --model artifacts/models/usq-base/q1.ckpt ... --images DIR [--patches 256]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lic.checkpoint import load_checkpoint
from lic.codec import pad
from lic.data import list_images, load_image, to_tensor


def image_gains(model, files: list[Path], probes: int) -> tuple[float, torch.Tensor, float, float]:
    """The mean ``G_i`` over every latent element of ``files`` at their rounded latents, its
    per-channel means, and the squared pixel error that RDOQ's indices add to rounding's, summed
    over the images: predicted to first order, and measured through ``g_s``."""
    total, channels, count = 0.0, torch.zeros(model.M, dtype=torch.float64), 0
    usq, rdoq = model.quantizer_for("usq"), model.quantizer_for("rdoq")
    predicted = actual = to_image = round_predicted = round_actual = 0.0
    for path in files:
        rgb, _ = load_image(path)
        x = pad(to_tensor(rgb))
        with torch.no_grad():
            a = model.analyze(x)
            y, means, scales = a["y"], a["means"], a["scales"]
            y_round = usq.dequantize(usq.quantize(y, means, scales), means)
            y_rdoq = rdoq.dequantize(rdoq.quantize(y, means, scales), means)
        g = model.synthesis_gains(y_round, probes=probes).double()
        total += float(g.sum())
        channels += g.sum(dim=(0, 2, 3))
        count += g[0, 0].numel()
        with torch.no_grad():
            predicted += float((g * ((y_rdoq - y).double() ** 2 - (y_round - y).double() ** 2)).sum())
            x_y, x_round, x_rdoq = (model.g_s(t).double() for t in (y, y_round, y_rdoq))
            actual += float(((x_rdoq - x_y) ** 2).sum() - ((x_round - x_y) ** 2).sum())
            to_image += float(((x_rdoq - x) ** 2).sum() - ((x_round - x) ** 2).sum())
            round_predicted += float((g * (y_round - y).double() ** 2).sum())
            round_actual += float(((x_round - x_y) ** 2).sum())
    return total / (count * model.M), channels / count, predicted, actual, to_image, round_actual / round_predicted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", required=True, help="a checkpoint (repeat)")
    ap.add_argument("--images", type=Path, required=True, help="the images whose latents are probed")
    ap.add_argument("--patches", type=int, help="cut the images into patches of this size first")
    ap.add_argument("--probes", type=int, default=4, help="Hutchinson draws per image")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.patches:
            import importlib.util

            spec = importlib.util.spec_from_file_location("quantizers", Path(__file__).parents[1] / "bench" / "quantizers.py")
            bench = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(bench)
            files = bench.cut_patches(args.images, args.patches, Path(tmp))
        else:
            files = list_images(args.images)
        print(f"{len(files)} images of {args.images}; {args.probes} probes each")
        print("| model | lmbda | G at y_hat = 0 | G at the images' y_hat | ratio | channel sensitivities' correlation |")
        print("|---|---|---|---|---|---|")
        moves = []
        for m in args.model:
            model = load_checkpoint(m)[0].eval()
            zero = model.channel_gains().double()
            mean, per_channel, predicted, actual, to_image, rounding = image_gains(model, files, args.probes)
            corr = float(torch.corrcoef(torch.stack([zero / zero.mean(), per_channel / per_channel.mean()]))[0, 1])
            print(f"| {m} | {model.lmbda} | {float(zero.mean()):.3e} | {mean:.3e} | {mean / float(zero.mean()):.2f} | "
                  f"{corr:.3f} |")
            moves.append((m, predicted, actual, to_image, rounding))
        print()
        print("| model | rounding's squared error through g_s / predicted | RDOQ's added squared error: first-order "
              "prediction | through g_s, against g_s(y) | ratio | against the image | ratio |")
        print("|---|---|---|---|---|---|---|")
        for m, predicted, actual, to_image, rounding in moves:
            print(f"| {m} | {rounding:.2f} | {predicted:.4g} | {actual:.4g} | {actual / predicted:.2f} | {to_image:.4g} | "
                  f"{to_image / predicted:.2f} |")


if __name__ == "__main__":
    main()
