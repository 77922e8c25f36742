"""Shared setup of the benchmarks: the codec under test and the 768x512 test image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lic.checkpoint import save_checkpoint, weights_fingerprint
from lic.codec import Codec
from lic.config import ModelConfig
from lic.data import default_images
from lic.models import Hyperprior


def load_codec(model: Path | None) -> Codec:
    """The checkpoint's codec, or an untrained N=64, M=96 model when none is given."""
    if model:
        return Codec.from_checkpoint(model)
    net = Hyperprior(ModelConfig(N=64, M=96)).eval()
    net.update(force=True)
    return Codec(net, weights_fingerprint(net.state_dict()))


def checkpoint_path(model: Path | None, tmp: Path) -> Path:
    """``model``, or an untrained N=64, M=96 model's checkpoint written into ``tmp`` when none is given."""
    if model:
        return model
    save_checkpoint(Path(tmp) / "model.ckpt", load_codec(None).model)
    return Path(tmp) / "model.ckpt"


def image_768x512() -> np.ndarray:
    """A held-out photo resized to 768x512 (Kodak's size)."""
    return np.asarray(Image.open(default_images("test") / "coffee.png").convert("RGB").resize((768, 512)))
