"""Quantizers against what theory allows, measured side by side in one run.

On a memoryless Gaussian source: residuals ``N(0, sigma^2)`` for every ``sigma`` of the scale table
between 0.15 and 6 (``--samples`` each), coded for real (rANS bytes) by

- USQ (rounding), RDOQ and 8-state TCQ (``delta``), each over a sweep of its search lambda;
- RDOQ and TCQ again with tables fitted to their own decisions (:mod:`lic.tables`), fitted on one
  draw of the source and measured on another (another seed).

Each quantizer's curve is the lower convex hull of its (rate, D / sigma^2) points over sigma and
lambda (time-sharing). The table gives RDOQ's rate (analytic tables) at each SNR and every other curve's rate
against it, and each curve's distance from Shannon's ``R(D) = log2(SNR) / 2`` at 1, 2 and 3
bits/element. The last line compares the fitted TCQ with the fitted RDOQ.

With ``--model`` (a checkpoint per rate point) and ``--images``: the same quantizers on the models'
own latents, encoder-only, with real bitstreams: BD-rates (PSNR and MS-SSIM) against USQ rounding,
with intervals over the images; RDOQ at its derived lambda and at ``--scales`` times it (the sweep
that checks the derivation); with ``--fit-images``, RDOQ and TCQ again with tables fitted to their
decisions on those training images (``lic tables fit``). With ``--patches SIZE`` the images are cut
into non-overlapping ``SIZE x SIZE`` patches, each coded as an image: the sweep on patches of the
training photos that checks the derived lambda without looking at the test photos. Its last line
says whether the derived lambda's PSNR BD-rate lies inside the interval of the sweep's best.

    python bench/quantizers.py [--samples 19200] [--delta 0.5 [0.75 ...]]
    python bench/quantizers.py --model q1.ckpt --model q2.ckpt ... --images DIR [--scales 0.5 2] [--fit-images TRAIN]
    python bench/quantizers.py --model q1.ckpt ... --images TRAIN --patches 256 --scales 0.125 0.25 0.5 2
"""

from __future__ import annotations

import argparse
import inspect
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from PIL import Image

from lic.bdrate import Interval, bd_rate_ci, load_per_image
from lic.config import ModelConfig
from lic.data import list_images, load_image
from lic.errors import LicError
from lic.evaluate import evaluate_checkpoints
from lic.models import Hyperprior
from lic.quantizers import TCQ, Quantizer, make_quantizer
from lic.tables import fit

TCQ_DELTA = inspect.signature(TCQ).parameters["delta"].default
SNRS_DB = (0.5, 1, 2, 4, 8, 12, 16)
RATES = (1, 2, 3)  # bits/element where the gap to R(D) is given
LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
DB_PER_BIT = 20 * math.log10(2)  # R(D) of a Gaussian: SNR in dB = 6.02 R


def envelope(points: list[tuple[float, float]]) -> np.ndarray:
    """The lower convex hull of ``(rate, D / sigma^2)`` from ``(rate, snr_db)`` points, from ``(0, 1)``
    (no bits, ``D = sigma^2``): what time-sharing between the operating points achieves (any point
    holds for every ``sigma`` with the step scaled, so the sigmas pool)."""
    pts = sorted({(r, 10 ** (-s / 10)) for r, s in points} | {(0.0, 1.0)})
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2 and (hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1]) <= \
                (p[0] - hull[-2][0]) * (hull[-1][1] - hull[-2][1]):
            hull.pop()
        hull.append(p)
    low = int(np.argmin([d for _, d in hull]))
    return np.array(hull[: low + 1])


def rate_at(curve: np.ndarray, snr_db: float) -> float:
    """The hull's rate at ``snr_db`` (NaN past its last point)."""
    return float(np.interp(-(10 ** (-snr_db / 10)), -curve[:, 1], curve[:, 0], right=math.nan))


def snr_at(curve: np.ndarray, rate: float) -> float:
    """The hull's SNR in dB at ``rate``."""
    return float(-10 * math.log10(np.interp(rate, curve[:, 0], curve[:, 1], right=math.nan)))


def source(sigmas: list[float], samples: int, seed: int) -> list[tuple[float, torch.Tensor]]:
    """One draw of residuals per ``sigma``, shaped as rows of 160 (TCQ's trellises run along them)."""
    gen = torch.Generator().manual_seed(seed)
    return [(s, s * torch.randn(1, 1, samples // 160, 160, generator=gen)) for s in sigmas]


def measure(q: Quantizer, draw: list[tuple[float, torch.Tensor]]) -> list[tuple[float, float]]:
    """``(bits per element, SNR in dB)`` of ``q`` on each ``sigma``'s residuals; bits from the real stream."""
    out = []
    for sigma, r in draw:
        zero, scales = torch.zeros_like(r), torch.full_like(r, sigma)
        k = q.quantize(r, zero, scales)
        d = float(((q.dequantize(k, zero) - r) ** 2).mean())
        bits = 8 * len(q.encode(k, scales)) / r.numel()
        out.append((bits, 10 * math.log10(sigma**2 / max(d, 1e-12))))
    return out


def gaps(curve: np.ndarray) -> list[float]:
    """Distance in dB from ``R(D)`` at each of :data:`RATES`."""
    return [r * DB_PER_BIT - snr_at(curve, r) for r in RATES]


def cut_patches(images: Path, size: int, out: Path) -> list[Path]:
    """Every photo of ``images`` cut into non-overlapping ``size x size`` patches (a grid from the
    top left; the remainder dropped), written as PNG into ``out``."""
    out.mkdir(exist_ok=True)
    files = []
    for path in list_images(images):
        rgb, _ = load_image(path)
        for top in range(0, rgb.shape[0] - size + 1, size):
            for left in range(0, rgb.shape[1] - size + 1, size):
                files.append(out / f"{path.stem}-{top}-{left}.png")
                Image.fromarray(rgb[top : top + size, left : left + size]).save(files[-1])
    if not files:
        raise LicError(f"no photo of {images} holds a {size}x{size} patch")
    return files


def lambda_check(rows: dict[str, Interval]) -> str:
    """Whether RDOQ's derived lambda (``rdoq x1``) has a PSNR BD-rate inside the interval of the best
    of the sweep (the ``rdoq x*`` row of lowest BD-rate)."""
    sweep = {name: ci for name, ci in rows.items() if name.startswith("rdoq x") and math.isfinite(ci.value)}
    if "rdoq x1" not in sweep:
        return "rdoq search lambda: no BD-rate at the derived lambda"
    best = min(sweep, key=lambda name: sweep[name].value)
    derived, top = sweep["rdoq x1"], sweep[best]
    inside = top.low <= derived.value <= top.high
    return (f"rdoq search lambda: derived (x1) {derived.value:+.2f}%, the sweep's best {best.removeprefix('rdoq ')} "
            f"{top.value:+.2f}% [{top.low:+.2f}, {top.high:+.2f}]: the derived lambda is "
            + ("inside" if inside else "outside") + " the best's interval")


def on_models(models: list[Path], images: Path, scales: list[float], fit_images: Path | None,
              tcq: dict[str, float | str], patches: int | None = None) -> None:
    """Every quantizer on the models' latents, encoder-only, against USQ rounding (module docstring);
    with ``fit_images``, RDOQ and TCQ again with tables fitted on those (training) images; with
    ``patches``, on patches of ``images`` of that size."""
    from lic.checkpoint import load_checkpoint
    from lic.refit import fit_checkpoint

    derived = [load_checkpoint(m)[0].search_lambda() for m in models]
    same = [{}] * len(models)
    runs: dict[str, tuple[str, list[dict], list[Path]]] = {"usq": ("usq", same, models), "tcq": ("tcq", [tcq] * len(models), models)}
    for f in [1.0, *scales]:
        runs[f"rdoq x{f:g}"] = ("rdoq", [{"lambda_rdoq": f * lam} for lam in derived], models)
    with tempfile.TemporaryDirectory() as tmp:
        files = cut_patches(images, patches, Path(tmp) / "patches") if patches else list_images(images)
        if fit_images is not None:
            for name, params in (("tcq", tcq), ("rdoq", {})):
                fitted = [Path(tmp) / f"{name}-{i}.ckpt" for i in range(len(models))]
                for m, out in zip(models, fitted):
                    fit_checkpoint(m, out, name, params, fit_images, progress=False)
                runs[f"{name} fitted"] = (name, [params] * len(models), fitted)
        paths = {}
        for name, (quantizer, params, ckpts) in runs.items():  # one model at a time: RDOQ's lambda is each model's
            evs = [evaluate_checkpoints([m], files, quantizer, name=name, progress=False, quantizer_params=p)
                   for m, p in zip(ckpts, params)]
            ev = evs[0]
            for other in evs[1:]:
                ev.rows.extend(other.rows)
            paths[name] = ev.write(Path(tmp) / f"{name.replace(' ', '_')}.json").with_suffix(".json")
        print(f"{len(models)} models, {len(files)} {f'{patches}x{patches} patches' if patches else 'images'} of {images}; "
              "derived RDOQ lambdas "
              + ", ".join(f"{lam:.4f}" for lam in derived) + f"; tcq {tcq or 'defaults'}"
              + (f"; tables fitted on {fit_images}" if fit_images else ""))
        print("| quantizer | BD-rate PSNR, % | BD-rate MS-SSIM, % |")
        print("|---|---|---|")
        psnr: dict[str, Interval] = {}
        for name in runs:
            if name == "usq":
                continue
            cells = []
            for metric in ("psnr-rgb", "ms-ssim-rgb"):
                try:
                    ci = bd_rate_ci(load_per_image(paths["usq"], metric), load_per_image(paths[name], metric))
                    cells.append(str(ci))
                    if metric == "psnr-rgb":
                        psnr[name] = ci
                except LicError as exc:  # a folded curve, too few images: said in the cell
                    cells.append(f"n/a ({exc})")
            print(f"| {name} | {cells[0]} | {cells[1]} |")
        print(lambda_check(psnr))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=19200, help="residuals per sigma (a multiple of 160)")
    ap.add_argument("--delta", type=float, nargs="+", default=[TCQ_DELTA],
                    help="TCQ's step delta; several: a sweep, the table and the last line for the first")
    ap.add_argument("--lambdas", type=float, nargs="+", default=LAMBDAS, help="the search lambdas swept")
    ap.add_argument("--model", type=Path, action="append", help="a checkpoint per rate point (a trained model)")
    ap.add_argument("--images", type=Path, help="with --model: the images coded")
    ap.add_argument("--scales", type=float, nargs="*", default=[0.5, 2.0], help="with --model: RDOQ's lambda "
                    "at these multiples of the derived one too")
    ap.add_argument("--fit-images", type=Path, help="with --model: fit RDOQ's and TCQ's tables on these (training) "
                    "images too (lic tables fit)")
    ap.add_argument("--patches", type=int, help="with --model: code the images cut into patches of this size "
                    "(the lambda sweep on patches of the training photos)")
    ap.add_argument("--tcq-lambda", type=float, help="with --model: TCQ's lambda_tcq (default: the library's)")
    ap.add_argument("--tcq-layout", help="with --model: TCQ's layout (default: the library's)")
    args = ap.parse_args()
    if args.model:
        tcq = {k: v for k, v in (("lambda_tcq", args.tcq_lambda), ("layout", args.tcq_layout)) if v is not None}
        on_models(args.model, args.images, args.scales, args.fit_images, tcq, args.patches)
        return
    model = Hyperprior(ModelConfig(N=8, M=8))
    model.update(force=True)
    conditional = model.gaussian_conditional
    sigmas = [float(s) for s in conditional.scale_table if 0.15 <= s <= 6]
    fitting, test = source(sigmas, args.samples, seed=1), source(sigmas, args.samples, seed=2)
    fit_r = torch.cat([r for _, r in fitting], 2)
    fit_scales = torch.cat([torch.full_like(r, s) for s, r in fitting], 2)

    def fitted(q: Quantizer) -> Quantizer:
        return fit(q, fit_r, torch.zeros_like(fit_r), fit_scales)

    def sweep(build: Callable[[float], Quantizer]) -> tuple[list, list]:
        analytic, own = [], []
        for lam in args.lambdas:
            q = build(lam)
            analytic += measure(q, test)
            own += measure(fitted(q), test)
        return analytic, own

    t0 = time.perf_counter()
    points = {"usq": measure(make_quantizer("usq", conditional), test)}
    points["rdoq"], points["rdoq fitted"] = sweep(
        lambda lam: make_quantizer("rdoq", conditional, lambda_rdoq=lam, weighting="none"))
    by_delta = {}
    for delta in args.delta:
        tcq = lambda lam, d=delta: make_quantizer("tcq", conditional, delta=d, lambda_tcq=lam, weighting="none")  # noqa: E731
        analytic, own = sweep(tcq)
        by_delta[delta] = {"tcq at 0.02": envelope(measure(tcq(0.02), test)), "tcq": envelope(analytic),
                           "tcq fitted": envelope(own)}
    curves = {name: envelope(p) for name, p in points.items()} | by_delta[args.delta[0]]
    ref = curves["rdoq"]
    print(f"Gaussian source: {len(sigmas)} sigmas in [0.15, 6], {args.samples} residuals each, tables fitted on "
          f"another draw; TCQ 8 states, delta {args.delta[0]}; lambdas {', '.join(map(str, args.lambdas))} "
          f"({time.perf_counter() - t0:.0f} s)")
    print()
    print("rate at equal SNR against RDOQ (analytic tables); rates from real rANS streams")
    print("| SNR (dB) | " + " | ".join(f"{s:g}" for s in SNRS_DB) + " |")
    print("|---|" + "---|" * len(SNRS_DB))
    print("| rdoq, bits/element | " + " | ".join(f"{rate_at(ref, s):.3f}" for s in SNRS_DB) + " |")
    for name in ("usq", "tcq at 0.02", "tcq", "rdoq fitted", "tcq fitted"):
        cells = [rate_at(curves[name], s) / rate_at(ref, s) - 1 for s in SNRS_DB]
        print(f"| {name} | " + " | ".join(f"{100 * c:+.0f}%" for c in cells) + " |")
    print("| R(D) | " + " | ".join(f"{100 * (s / DB_PER_BIT / rate_at(ref, s) - 1):+.0f}%" for s in SNRS_DB) + " |")
    print()
    print("gap to R(D) in dB at " + "/".join(map(str, RATES)) + " bits/element: " +
          "; ".join(f"{name} " + "/".join(f"{g:.2f}" for g in gaps(c)) for name, c in curves.items()))

    def against_rdoq(c: dict) -> list[float]:
        return [rate_at(c["tcq fitted"], s) / rate_at(curves["rdoq fitted"], s) - 1 for s in SNRS_DB if s >= 1]

    if len(by_delta) > 1:
        print()
        print("| delta | tcq gap (dB) | tcq fitted gap (dB) | tcq fitted rate against rdoq fitted, SNR 1-16 dB |")
        print("|---|---|---|---|")
        for delta, c in by_delta.items():
            r = against_rdoq(c)
            print(f"| {delta} | " + "/".join(f"{g:.2f}" for g in gaps(c["tcq"])) + " | " +
                  "/".join(f"{g:.2f}" for g in gaps(c["tcq fitted"])) + f" | {100 * min(r):+.1f}% to {100 * max(r):+.1f}% |")
    ratio = against_rdoq(curves)
    print("gaussian: gap to R(D) at 1/2/3 bits per element: tcq " + "/".join(f"{g:.2f}" for g in gaps(curves["tcq fitted"])) +
          " dB, rdoq " + "/".join(f"{g:.2f}" for g in gaps(curves["rdoq fitted"])) + " dB; tcq rate against rdoq at SNR "
          f"1-16 dB: {100 * min(ratio):.1f}% to {100 * max(ratio):.1f}%")


if __name__ == "__main__":
    main()
