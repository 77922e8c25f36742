"""Image-level coding: an 8-bit RGB image to a ``.lic`` stream and back.

The network sees the image padded (edge-replicated) to a multiple of 64; the decoder crops the
padding away again.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lic import bitstream
from lic.checkpoint import load_checkpoint
from lic.config import GRANULARITY, QUANTIZER_CLASSES
from lic.data import max_pixels, to_tensor, to_uint8
from lic.errors import LicError
from lic.models import Hyperprior
from lic.quantizers import Quantizer, quantizer_from_header


@contextmanager
def synthesis_threads() -> Iterator[None]:
    """Run ``g_s`` with ``LIC_SYNTHESIS_THREADS`` threads, when set.

    Latents decode bit-exactly whatever the thread count. The float32 synthesis ``g_s`` can
    differ in its last bits between thread counts, which may move a rounded pixel by one; pinning
    its threads makes the image bit-exact across processes with different thread settings.
    """
    value = os.environ.get("LIC_SYNTHESIS_THREADS")
    if not value:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(value))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pad(x: torch.Tensor, multiple: int = GRANULARITY) -> torch.Tensor:
    """Edge-replicate ``x`` on the right and bottom up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


@dataclass
class Encoded:
    data: bytes
    recon: np.ndarray | None  # the decoder's output, computed by the encoder when asked


class Codec:
    """A model ready to code images: weights in eval mode, fingerprint computed once; ``meta``: its
    checkpoint's record (training, retraining)."""

    def __init__(self, model: Hyperprior, fingerprint: str, device: str | torch.device = "cpu",
                 meta: dict[str, Any] | None = None) -> None:
        self.model = model.to(device).eval()
        self.fingerprint = fingerprint
        self.device = torch.device(device)
        self.meta = meta or {}
        self._kind = bitstream.model_id(model.config.architecture)  # the model field of .lic headers

    @classmethod
    def from_checkpoint(cls, path: Path, device: str | torch.device = "cpu") -> "Codec":
        model, obj = load_checkpoint(path, device)
        return cls(model, obj["fingerprint"], device, obj.get("meta"))

    def quantizer(self, name: str | None = None, **params: Any) -> Quantizer:
        """The model's own quantizer, or another one on the same entropy model
        (:meth:`Hyperprior.quantizer_for`)."""
        return self.model.quantizer_for(name, **params)

    @torch.inference_mode()
    def encode(self, rgb: np.ndarray, quantizer: Quantizer | None = None, with_recon: bool = False) -> Encoded:
        """Code an ``HxWx3`` uint8 image; with ``with_recon`` also return what the decoder will output."""
        q = quantizer or self.model.quantizer_for()
        h, w = rgb.shape[:2]
        x = pad(to_tensor(rgb).to(self.device))
        out = self.model.compress(x, quantizer=q)
        header = bitstream.Header(q.code, bytes.fromhex(self.fingerprint)[:8], h, w, q.pack_params(), self._kind)
        data = bitstream.pack(header, out["strings"][1][0], out["strings"][0][0])
        recon = None
        if with_recon:
            with synthesis_threads():
                recon = to_uint8(self.model.g_s(out["y_hat"]).clamp_(0, 1)[..., :h, :w])
        return Encoded(data, recon)

    @torch.inference_mode()
    def decode(self, data: bytes) -> np.ndarray:
        """Decode a ``.lic`` stream to an ``HxWx3`` uint8 image."""
        header, z_string, y_string = bitstream.unpack(data, max_pixels())
        if header.model != self._kind:
            name = bitstream.model_name(header.model)
            theirs = f"a {name} model" if name else f"another architecture (model id {header.model:08x})"
            raise LicError(f"stream was made with {theirs}, but this checkpoint is a {self.model.config.architecture}")
        ours = self.fingerprint[:16]
        if header.fingerprint.hex() != ours:
            raise LicError(
                f"stream was made with model {header.fingerprint.hex()}, but this checkpoint is {ours}"
            )
        fitted = [f.apply for name, f in self.model.fitted_tables.items()
                  if name in QUANTIZER_CLASSES and QUANTIZER_CLASSES[name][1] == header.quantizer]
        q = quantizer_from_header(header.quantizer, header.qparams, self.model.gaussian_conditional, fitted)
        ph, pw = -header.height % GRANULARITY, -header.width % GRANULARITY
        shape = torch.Size(((header.height + ph) // GRANULARITY, (header.width + pw) // GRANULARITY))
        with synthesis_threads():
            out = self.model.decompress([[y_string], [z_string]], shape, quantizer=q)
        return to_uint8(out["x_hat"][..., : header.height, : header.width])
