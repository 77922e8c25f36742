"""CUDA, where there is one (skipped elsewhere, so in CI): the bundled test photos coded on the GPU
decode on the CPU to the same latents, bit for bit, with USQ and decoder-weighted TCQ, and to images
within a level here and there; a few training steps run on the GPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic import bitstream
from lic.checkpoint import weights_fingerprint
from lic.codec import Codec
from lic.config import GRANULARITY
from lic.evaluate import psnr
from lic.quantizers import quantizer_from_header
from test_streams import tiny_codec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("quantizer", ["usq", "tcq"])
def test_streams_coded_on_cuda_decode_on_cpu_to_the_same_latents(test_images: Path, quantizer: str) -> None:
    cpu = tiny_codec({})
    gpu = Codec(tiny_codec({}).model, cpu.fingerprint, "cuda")
    assert weights_fingerprint(gpu.model.state_dict()) == cpu.fingerprint
    for path in sorted(test_images.glob("*.png")):
        rgb = np.array(Image.open(path).convert("RGB"))
        enc = gpu.encode(rgb, gpu.quantizer(quantizer), with_recon=True)
        on_cpu, on_gpu = cpu.decode(enc.data), gpu.decode(enc.data)
        assert torch.equal(_latents(cpu, enc.data), _latents(gpu, enc.data).cpu())  # the entropy decoding: exact
        # the float32 synthesis g_s (cuDNN on the GPU) may move a rounded pixel by one level
        assert min(psnr(on_gpu, enc.recon), psnr(on_cpu, on_gpu)) > 60
        assert abs(psnr(rgb, on_cpu) - psnr(rgb, on_gpu)) < 1e-3


def _latents(codec: Codec, data: bytes) -> torch.Tensor:
    header, z, y = bitstream.unpack(data, 10**8)
    q = quantizer_from_header(header.quantizer, header.qparams, codec.model.gaussian_conditional)
    shape = torch.Size((-(-header.height // GRANULARITY), -(-header.width // GRANULARITY)))
    with torch.inference_mode():
        return codec.model.decompress([[y], [z]], shape, q)["y_hat"]


def test_training_steps_on_cuda(tmp_path: Path, train_images: Path) -> None:
    from conftest import TINY, TINY_TRAIN
    from lic.train import train

    metrics = train(TINY, replace(TINY_TRAIN, steps=5, device="cuda"), train_images, tmp_path / "t.ckpt", progress=False)
    assert metrics["step"] == 5 and np.isfinite(metrics["loss"])
    codec = Codec.from_checkpoint(tmp_path / "t.ckpt", "cuda")
    assert codec.model.decoder_sensitivity().device.type == "cuda"
