"""Encode/decode time of a 768x512 image: lic's codec versus CompressAI's own
``compress``/``decompress`` on the same weights, measured side by side in one run.

lic's times include everything ``lic compress``/``lic decompress`` do on a loaded model:
padding, the float64 entropy parameters, the rANS streams, the header and checksum.

    python bench/codec_speed.py [--model CKPT] [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from common import image_768x512, load_codec
from compressai.models import MeanScaleHyperprior

from lic.codec import pad
from lic.data import to_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="checkpoint (default: an untrained N=64, M=96 model)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    codec = load_codec(args.model)
    rgb = image_768x512()
    x = pad(to_tensor(rgb))

    def ours_enc() -> bytes:
        return codec.encode(rgb).data

    def cai_enc() -> dict:
        with torch.inference_mode():
            return MeanScaleHyperprior.compress(codec.model, x)

    data, cai = ours_enc(), cai_enc()

    def ours_dec() -> None:
        codec.decode(data)

    def cai_dec() -> None:
        with torch.inference_mode():
            MeanScaleHyperprior.decompress(codec.model, cai["strings"], cai["shape"])

    times: dict[str, list[float]] = {k: [] for k in ("ours_enc", "cai_enc", "ours_dec", "cai_dec")}
    fns = {"ours_enc": ours_enc, "cai_enc": cai_enc, "ours_dec": ours_dec, "cai_dec": cai_dec}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    cai_bytes = sum(len(s[0]) for s in cai["strings"])
    print(f"image 768x512, threads {args.threads}, repeats {args.repeats} (median)")
    print(f"lic bytes {len(data)} (incl. header+crc), compressai bytes {cai_bytes}")
    print(f"encode: lic {med['ours_enc'] * 1e3:.1f} ms, compressai {med['cai_enc'] * 1e3:.1f} ms, "
          f"ratio {med['ours_enc'] / med['cai_enc']:.3f}")
    print(f"decode: lic {med['ours_dec'] * 1e3:.1f} ms, compressai {med['cai_dec'] * 1e3:.1f} ms, "
          f"ratio {med['ours_dec'] / med['cai_dec']:.3f}")


if __name__ == "__main__":
    main()
