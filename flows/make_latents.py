"""Phase 2 flow: a dataset of truly quantized latents for one pretrained model."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import check_run, checkpoint, latents, load_params, main, seed_of, tcq_coding, with_seed
from lic.config import LatentsConfig
from lic.latents import make_latents as make
from lic.quantizers import QUANTIZERS


@task(retries=1)  # generation resumes chunk by chunk
def quantize_patches(ckpt: str, out: str, images: str, quantizer: str, qparams: dict, cfg: LatentsConfig) -> str:
    make(Path(ckpt), Path(out), Path(images), quantizer, qparams, cfg, resume=True, progress=False)
    return out


def check(quantizer: str, key: str, seed: str = "0") -> None:
    check_run(quantizer, key, seed, QUANTIZERS)


@flow(name="make_latents")
def make_latents(quantizer: str, key: str, seed: str = "0") -> str:
    p = load_params()
    s = seed_of(p, seed)
    return quantize_patches(str(checkpoint(quantizer, "base", key, s)), str(latents(quantizer, key, s)),
                            p["data"]["train_images"], quantizer, tcq_coding(p, quantizer),
                            LatentsConfig(**with_seed(p["latents"], s)))


if __name__ == "__main__":
    main(make_latents, check)
