"""The throughputs behind ``flows/estimate.py``, measured on this machine: the mean-scale hyperprior's
training and retraining steps/s at the demo's model size (N=64, M=96, 128x128 patches, batch 8), and
encode plus decode seconds per megapixel for the demo's and the zoo's model sizes (USQ and TCQ,
averaged), on CPU. Other model kinds are counted at these rates, their time scaled by a factor from the
lab notebook (``flows.estimate.MEASURED_KINDS``), or not at all.

    python bench/estimate_rates.py [--steps 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lic.models import build_model
from lic.checkpoint import save_checkpoint
from lic.codec import Codec
from lic.config import LatentsConfig, ModelConfig, RetrainConfig, TrainConfig
from lic.data import PatchSampler, default_images, list_images, load_image
from lic.latents import make_latents
from lic.retrain import retrain
from lic.train import make_optimizers, rate_distortion


def training_rate(steps: int) -> float:
    """Steps/s of the training loop's work (forward, backward, both optimizers) at the demo's size."""
    cfg = TrainConfig(lmbda=0.013, batch_size=8, patch_size=128, min_scale=0.5)
    model = build_model(ModelConfig(N=64, M=96)).train()
    main, aux = make_optimizers(model, cfg)
    sampler = PatchSampler.from_folder(default_images("train"), cfg.patch_size, cfg.batch_size, cfg.min_scale)
    gen = torch.Generator().manual_seed(0)
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        x = sampler.sample(gen)
        main.zero_grad()
        aux.zero_grad()
        rate_distortion(model(x), x, cfg.lmbda)["loss"].backward()
        main.step()
        model.aux_loss().backward()
        aux.step()
    return steps / (time.perf_counter() - t0)


def retraining_rates(steps: int, tmp: Path) -> dict[str, float]:
    """Steps/s of each retraining mode at the demo's size (batch 8, 128x128 patches, USQ), on a small
    dataset of an untrained model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(N=64, M=96))
    model.update(force=True)
    ckpt = tmp / "m.ckpt"
    save_checkpoint(ckpt, model, meta={"source": {"lmbda": 0.013}})
    data = make_latents(ckpt, tmp / "d.zarr", default_images("train"), "usq",
                        cfg=LatentsConfig(patches=32, patch_size=128, chunk=16), progress=False)
    rates = {}
    for mode in ("decoder", "control", "hyper-decoder"):
        t0 = time.perf_counter()
        retrain(RetrainConfig(mode, steps=steps, batch_size=8), ckpt, data, tmp / f"{mode}.ckpt", progress=False)
        rates[mode] = steps / (time.perf_counter() - t0)
    return rates


def coding_seconds_per_megapixel(N: int, M: int) -> float:
    """Encode plus decode of the bundled held-out photos with an untrained model of that size, USQ and
    TCQ averaged, per megapixel."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(N=N, M=M))
    model.update(force=True)
    codec = Codec(model.eval(), "00" * 32)
    images = [load_image(p)[0] for p in list_images(default_images("test"))]
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    seconds = []
    for q in ("usq", "tcq"):
        quantizer = codec.quantizer(q)
        t0 = time.perf_counter()
        for rgb in images:
            codec.decode(codec.encode(rgb, quantizer).data)
        seconds.append(time.perf_counter() - t0)
    return float(np.mean(seconds)) / (pixels / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"training, N=64 M=96, 128x128, batch 8: {training_rate(args.steps):.2f} steps/s")
    with tempfile.TemporaryDirectory() as tmp:
        for mode, rate in retraining_rates(args.steps, Path(tmp)).items():
            print(f"retraining {mode}, N=64 M=96, 128x128, batch 8: {rate:.2f} steps/s")
    for N, M in ((64, 96), (128, 192)):
        print(f"coding (encode + decode), N={N} M={M}: {coding_seconds_per_megapixel(N, M):.2f} s per megapixel")


if __name__ == "__main__":
    main()
