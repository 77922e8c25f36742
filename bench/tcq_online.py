"""Phase 4: retraining steps per second, ``online`` (the quantizer runs on every batch) against
``stale`` (the dataset's indices), and online with its search one batch ahead on a worker thread
(``lookahead``, lic/lookahead.py), measured side by side in one run, with the share of an online
step that the quantizer's search takes.

All three run ``lic.retrain.retrain`` for the same steps on the same dataset, in turn
(stale, online, lookahead, stale, ...) so that drift in the machine's speed hits all alike; the clock
runs from the end of the warm-up steps to the last step (loading and saving excluded). The default
size is the zoo's (N=128, M=192, 256x256 patches, batch 16); ``--kind mbt2018`` measures a spatial
context model, whose online pass quantizes each batch position by position (wavefronts).

    python bench/tcq_online.py [--kind hyperprior|mbt2018] [--channels 128 192] [--patch 256]
                               [--quantizer tcq] [--steps 5] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lic.checkpoint import save_checkpoint
from lic.config import KINDS, QUANTIZER_CLASSES, LatentsConfig, ModelConfig, RetrainConfig
from lic.data import default_images
from lic.latents import make_latents
from lic.lookahead import Lookahead
from lic.models import build_model
from lic.quantizers import quantizer_class
from lic.retrain import retrain

WARMUP = 2


def timed_search(cls: type) -> dict[str, float]:
    """Wrap ``cls.quantize`` so that its seconds add up in the returned dict."""
    clock = {"s": 0.0}
    inner = cls.quantize

    def quantize(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            clock["s"] += time.perf_counter() - t0

    cls.quantize = quantize
    return clock


def run(strategy: str, ckpt: Path, data: Path, out: Path, steps: int, batch: int, device: str,
        clock: dict[str, float]) -> tuple[float, float]:
    """Steps/s after the warm-up, and the share of that time the quantizer took."""
    marks: dict[int, tuple[float, float]] = {}
    cfg = RetrainConfig("hyper-decoder", steps=WARMUP + steps, batch_size=batch, lmbda=0.0067,
                        strategy="stale" if strategy == "stale" else "online", lookahead=strategy == "lookahead",
                        device=device, checkpoint_every=10**6)
    out.unlink(missing_ok=True)
    retrain(cfg, ckpt, data, out, progress=False, log_every=1,
            on_log=lambda step, _: marks.setdefault(step, (time.perf_counter(), clock["s"])))
    (t0, s0), (t1, s1) = marks[WARMUP], marks[WARMUP + steps]
    return steps / (t1 - t0), (s1 - s0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="hyperprior", choices=list(KINDS))
    ap.add_argument("--channels", type=int, nargs=2, default=(128, 192), metavar=("N", "M"))
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--quantizer", default="tcq", choices=list(QUANTIZER_CLASSES))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    clock = timed_search(quantizer_class(args.quantizer))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.ckpt"
        torch.manual_seed(0)
        net = build_model(ModelConfig(architecture=KINDS[args.kind], N=args.channels[0], M=args.channels[1],
                                      quantizer=args.quantizer))
        net.update(force=True)
        save_checkpoint(ckpt, net)
        data = make_latents(ckpt, Path(tmp) / "d.zarr", default_images("train"), args.quantizer, progress=False,
                            cfg=LatentsConfig(patches=2 * args.batch, patch_size=args.patch, chunk=args.batch,
                                              device=args.device))
        rates: dict[str, list[tuple[float, float]]] = {"stale": [], "online": []}
        if Lookahead.supports(net):  # no context model: the search can run ahead
            rates["lookahead"] = []
        for _ in range(args.repeats):
            for strategy in rates:
                rates[strategy].append(run(strategy, ckpt, data, Path(tmp) / "out.ckpt", args.steps, args.batch,
                                           args.device, clock))
    print(f"phase 4, {args.kind} N={args.channels[0]} M={args.channels[1]}, {args.quantizer.upper()}, "
          f"{args.patch}x{args.patch} patches, batch {args.batch}, {args.steps} steps x {args.repeats}, "
          f"{args.device}, {torch.get_num_threads()} torch threads")
    med = {s: statistics.median(r for r, _ in v) for s, v in rates.items()}
    for strategy, v in rates.items():
        share = statistics.median(s for _, s in v)
        print(f"  {strategy:9s}: {med[strategy]:6.3f} steps/s, the quantizer {share:.0%} of the time")
    print(f"  online costs {med['stale'] / med['online']:.2f}x stale per step")
    if "lookahead" in med:
        print(f"  lookahead costs {med['stale'] / med['lookahead']:.2f}x stale per step "
              f"({med['lookahead'] / med['online']:.2f}x online's steps/s)")


if __name__ == "__main__":
    main()
