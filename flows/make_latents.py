"""Phase 2 flow: a dataset of truly quantized latents for one pretrained model."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import checkpoint, latents, load_params, main, tcq_coding
from lic.latents import make_latents as make


@task(retries=1)  # generation resumes chunk by chunk
def quantize_patches(ckpt: str, out: str, images: str, quantizer: str, qparams: dict, settings: dict) -> str:
    make(Path(ckpt), Path(out), Path(images), quantizer, qparams, resume=True, progress=False, **settings)
    return out


@flow(name="make_latents")
def make_latents(quantizer: str, key: str) -> str:
    p = load_params()
    return quantize_patches(str(checkpoint(quantizer, "base", key)), str(latents(quantizer, key)),
                            p["data"]["train_images"], quantizer, tcq_coding(p, quantizer), p["latents"])


if __name__ == "__main__":
    main(make_latents)
