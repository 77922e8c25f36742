"""Encode/decode time of a 768x512 image: lic's codec against CompressAI's own
``compress``/``decompress`` on the same weights, for each kind of CompressAI's zoo (its classes at
quality 1, untrained weights shared by both), measured side by side in one run, with USQ.

lic's times include everything ``lic compress``/``lic decompress`` do on a loaded model: padding,
the float64 entropy parameters, the rANS streams, the header and checksum. The spatial context
models (``mbt2018``, ``cheng2020-*``) code a wavefront of positions at a time where CompressAI codes
one position at a time.

    python bench/codec_speed.py [--architecture mbt2018 ...] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import image_768x512

from lic import compat
from lic.checkpoint import weights_fingerprint
from lic.codec import Codec, pad
from lic.config import ZOO_KINDS, ModelConfig
from lic.data import to_tensor
from lic.models import build_model
from lic.zoo import zoo_source


def pair(architecture: str) -> tuple[Codec, torch.nn.Module]:
    """lic's codec and CompressAI's model of ``architecture`` at quality 1, on the same weights."""
    torch.manual_seed(0)
    theirs = compat.zoo_model(architecture, 1).eval()
    theirs.update(force=True)
    src = zoo_source(1, architecture)
    ours = build_model(ModelConfig(architecture=src["kind"], N=src["N"], M=src["M"]))
    ours.load_state_dict(theirs.state_dict())
    ours.update(force=True)
    return Codec(ours.eval(), weights_fingerprint(ours.state_dict())), theirs


def measure(codec: Codec, theirs: torch.nn.Module, repeats: int) -> dict[str, float]:
    rgb = image_768x512()
    x = pad(to_tensor(rgb))

    def cai_enc() -> dict:
        with torch.inference_mode():
            return theirs.compress(x)

    data, cai = codec.encode(rgb).data, cai_enc()

    def cai_dec() -> None:
        with torch.inference_mode():
            theirs.decompress(cai["strings"], cai["shape"])

    fns = {"ours_enc": lambda: codec.encode(rgb), "cai_enc": cai_enc, "ours_dec": lambda: codec.decode(data),
           "cai_dec": cai_dec}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both alike
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return med | {"ours_bytes": len(data), "cai_bytes": sum(len(s[0]) for s in cai["strings"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--architecture", nargs="*", default=list(ZOO_KINDS), choices=list(ZOO_KINDS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"image 768x512, USQ, threads {args.threads}, repeats {args.repeats} (median)")
    for name in args.architecture:
        m = measure(*pair(name), args.repeats)
        print(f"{name}: bytes lic {m['ours_bytes']} (header and CRC included), compressai {m['cai_bytes']}; "
              f"encode lic {m['ours_enc'] * 1e3:.0f} ms, compressai {m['cai_enc'] * 1e3:.0f} ms, ratio "
              f"{m['ours_enc'] / m['cai_enc']:.3f}; decode lic {m['ours_dec'] * 1e3:.0f} ms, compressai "
              f"{m['cai_dec'] * 1e3:.0f} ms, ratio {m['ours_dec'] / m['cai_dec']:.3f}")


if __name__ == "__main__":
    main()
