"""Encode/decode time of a 768x512 image: the channel-context model against the hyperprior it
extends, with USQ and TCQ (8 states), side by side in one run (interleaved repeats).

Both share every weight but the context transforms: the context model is built from the
hyperprior's weights (``--hyperprior CKPT``, default an untrained N=64, M=96 model) with its own
``cc`` (``--context CKPT``, default the zero start with small random last layers, so that the
contexts move ``means`` and ``scales``). CompressAI has no channel-conditional model on the
mean-scale hyperprior's transforms (``Elic2022Official`` has other transforms, uneven groups and
a checkerboard), so there is no run of its own ``compress`` on the same weights to compare with.

    python bench/context_speed.py [--hyperprior CKPT] [--context CKPT] [--slices 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from common import image_768x512, load_codec

from lic.checkpoint import weights_fingerprint
from lic.codec import Codec
from lic.config import ModelConfig
from lic.models import ChannelContext


def context_codec(base: Codec, slices: int, ckpt: Path | None) -> Codec:
    if ckpt:
        return Codec.from_checkpoint(ckpt)
    cfg = ModelConfig(architecture="channel-context", N=base.model.N, M=base.model.M, slices=slices)
    net = ChannelContext(cfg)
    net.load_state_dict(base.model.state_dict(), strict=False)
    torch.manual_seed(0)
    with torch.no_grad():
        for cc in net.cc:
            cc[-1].weight.normal_(0, 0.01)
    net.update(force=True)
    return Codec(net.eval(), weights_fingerprint(net.state_dict()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyperprior", type=Path)
    ap.add_argument("--context", type=Path)
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    hyper = load_codec(args.hyperprior)
    codecs = {"hyperprior": hyper, "context": context_codec(hyper, args.slices, args.context)}
    rgb = image_768x512()
    times: dict[tuple[str, str, str], list[float]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for _ in range(args.repeats):
        for q in ("usq", "tcq"):
            for name, codec in codecs.items():
                quantizer = codec.quantizer(q)
                t0 = time.perf_counter()
                data = codec.encode(rgb, quantizer).data
                t1 = time.perf_counter()
                codec.decode(data)
                t2 = time.perf_counter()
                times.setdefault((q, name, "encode"), []).append(t1 - t0)
                times.setdefault((q, name, "decode"), []).append(t2 - t1)
                sizes[q, name] = len(data)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"768x512, {torch.get_num_threads()} threads, median of {args.repeats}; context: {args.slices} slices")
    for q in ("usq", "tcq"):
        for op in ("encode", "decode"):
            h, c = med[q, "hyperprior", op], med[q, "context", op]
            print(f"  {q} {op}: hyperprior {h * 1e3:7.1f} ms, context {c * 1e3:7.1f} ms, ratio {c / h:.2f}x")
        print(f"  {q} bytes: hyperprior {sizes[q, 'hyperprior']}, context {sizes[q, 'context']}")


if __name__ == "__main__":
    main()
