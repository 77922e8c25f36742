"""TCQ speed on a 768x512 image, measured side by side in one run:

- the 8-state Viterbi search alone, in latent elements per second: the reference search (one core),
  the pruned search on one thread and on every thread (numba), and the torch search (on CUDA when
  there is a GPU, else on the CPU), each with its ratio to the reference;
- whole-image encode and decode with TCQ against USQ on the same model, as ratios; RDOQ's encode
  against USQ's, and TCQ's with tables fitted to its decisions (:mod:`lic.tables`) against TCQ's.

    python bench/tcq_speed.py [--model CKPT] [--layout row|channel|position|single] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numba
import numpy as np
import torch

from common import image_768x512, load_codec

from lic import trellis, trellis_torch
from lic.codec import pad
from lic.data import to_tensor
from lic.tables import fit_model


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="checkpoint (default: an untrained N=64, M=96 model)")
    ap.add_argument("--layout", default="row")
    ap.add_argument("--states", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    codec = load_codec(args.model)
    m = codec.model
    rgb = image_768x512()
    tcq = codec.quantizer("tcq", states=args.states, layout=args.layout)
    usq = codec.quantizer("usq")

    with torch.inference_mode():
        a = m.analyze(pad(to_tensor(rgb)))
    y, means, scales = a["y"], a["means"], a["scales"]
    r = tcq.to_rows((y - means).double())
    sidx = tcq.to_rows(tcq.table_indexes(scales).long())
    w = np.ones_like(r)
    L = tcq._lengths
    S = len(m.gaussian_conditional.scale_table)

    rest = (tcq.delta, tcq.lambda_tcq, tcq.next_state, tcq.quantizer_of, S, L["bits_p"], L["bits_m"],
            L["m_offset"], L["m_len"])
    all_threads = trellis.threads()
    rates = {"reference (1 core)": median_time(lambda: trellis.viterbi_reference(r, w, sidx, *rest), args.repeats)}
    numba.set_num_threads(1)
    rates["pruned, 1 thread"] = median_time(lambda: trellis.viterbi(r, w, sidx, *rest), args.repeats)
    numba.set_num_threads(all_threads)
    rates[f"pruned, {all_threads} threads"] = median_time(lambda: trellis.viterbi(r, w, sidx, *rest), args.repeats)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tr, tw, ts = (torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in (r, w, sidx))
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    rates[f"torch on {dev}"] = median_time(lambda: (trellis_torch.viterbi(tr, tw, ts, *rest), sync()), args.repeats)
    rdoq = codec.quantizer("rdoq", lambda_rdoq=0.2)  # a fixed lambda: an untrained model records none to derive it from
    with torch.inference_mode():
        fitted = fit_model(m, tcq, [a], iterations=2)  # fitted on this image: the speed, not the rate, is measured
    data = {"usq": codec.encode(rgb, usq).data, "tcq": codec.encode(rgb, tcq).data}
    coders = (("usq", usq), ("tcq", tcq), ("rdoq", rdoq), ("tcq fitted", fitted))
    enc = {k: median_time(lambda q=q: codec.encode(rgb, q), args.repeats) for k, q in coders}
    dec = {k: median_time(lambda d=d: codec.decode(d), args.repeats) for k, d in data.items()}
    print(f"latent {tuple(y.shape)} = {y.numel()} elements, {args.states} states, layout {args.layout}, "
          f"torch threads {torch.get_num_threads()}")
    base = rates["reference (1 core)"]
    for name, t in rates.items():
        print(f"viterbi, {name}: {t * 1e3:.1f} ms = {y.numel() / t / 1e6:.2f} M elements/s, {base / t:.2f}x the reference")
    print(f"bytes: usq {len(data['usq'])}, tcq {len(data['tcq'])}")
    print(f"encode: usq {enc['usq'] * 1e3:.1f} ms, tcq {enc['tcq'] * 1e3:.1f} ms, ratio {enc['tcq'] / enc['usq']:.3f}")
    print(f"encode: rdoq {enc['rdoq'] * 1e3:.1f} ms, ratio to usq {enc['rdoq'] / enc['usq']:.3f}; tcq with fitted "
          f"tables {enc['tcq fitted'] * 1e3:.1f} ms, ratio to tcq {enc['tcq fitted'] / enc['tcq']:.3f}")
    print(f"decode: usq {dec['usq'] * 1e3:.1f} ms, tcq {dec['tcq'] * 1e3:.1f} ms, ratio {dec['tcq'] / dec['usq']:.3f}")


if __name__ == "__main__":
    main()
