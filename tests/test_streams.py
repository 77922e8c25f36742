"""The ``.lic`` streams of a fixed model on the bundled test images are pinned byte for byte.

``data/tiny-weights.pt`` holds the weights of a tiny model (N=M=16, trained 60 steps); the entropy
coder's tables are rebuilt from them with ``update()``. Each coding below codes the three bundled
test photos; the SHA-256 of their concatenated streams was recorded before the refactoring of
issue 17 (one front half, one quantizer factory) and must not move: a refactor that changes a
single byte of a stream fails here. Threads are pinned to one, since ``g_a`` runs in float32.
The hashes are of format-1 streams: format 2 only adds the model byte (0 here) to the header.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import as_version_1
from lic.checkpoint import weights_fingerprint
from lic.codec import Codec
from lic.config import ModelConfig
from lic.models import Hyperprior

WEIGHTS = Path(__file__).parent / "data" / "tiny-weights.pt"
TCQ_TRAINED = {"quantizer": "tcq", "quantizer_params": {"delta": 0.5, "perturbation": "switch"}}
# name -> (model config besides N and M, quantizer name or None for the model's own, coding parameters, SHA-256)
CODINGS = {
    "usq": ({}, "usq", {}, "bb3248fb4a13d2409622ed7488d7f1ba64db0895cc9a0ed05c1085bafe9e083a"),
    "tcq-default": ({}, "tcq", {}, "bb9cd4a4ab31876a1f6afcc543dd7c7144b0e42c2b0edda5bd80b95f8067976f"),
    "tcq-4-channel-unweighted": ({}, "tcq", {"states": 4, "layout": "channel", "weighting": "none", "lambda_tcq": 0.1},
                                 "3ce023944dc7fc2ccf65004cbb6141af6fc3f6145612e426a69474d6c3e46b85"),
    # changed once on purpose: its streams were undecodable (the encoder built its tables from delta
    # 0.35, the decoder from the header's float32 0.35); the encoder now uses the float32 value too
    "tcq-position-delta": ({}, "tcq", {"delta": 0.35, "layout": "position"},
                           "9e474c7be47763a79a94cf675760c88f738497583e91af947e74dfcf6d90040e"),
    # the TCQ-trained config's own quantizer: the same parameters as tcq-default, reached another way
    "tcq-trained-own": (TCQ_TRAINED, None, {}, "bb9cd4a4ab31876a1f6afcc543dd7c7144b0e42c2b0edda5bd80b95f8067976f"),
}


def tiny_codec(extra: dict) -> Codec:
    model = Hyperprior(ModelConfig(N=16, M=16, **extra))
    model.update(force=True)  # sizes the scale table; the tables are rebuilt after loading
    torch.nn.Module.load_state_dict(model, torch.load(WEIGHTS, weights_only=True), strict=False)
    model.update(force=True)
    return Codec(model.eval(), weights_fingerprint(model.state_dict()))


@pytest.fixture(scope="module")
def photos(test_images: Path) -> list[np.ndarray]:
    # the three held-out photos of the split the streams were recorded on (china, coffee, rocket)
    return [np.array(Image.open(test_images / f"{n}.png").convert("RGB")) for n in ("china", "coffee", "rocket")]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(CODINGS))
def test_streams_are_byte_identical_to_the_recorded_ones(name: str, photos: list[np.ndarray], one_thread) -> None:
    extra, quantizer, params, expected = CODINGS[name]
    codec = tiny_codec(extra)
    h = hashlib.sha256()
    for rgb in photos:
        enc = codec.encode(rgb, codec.quantizer(quantizer, **params), with_recon=True)
        assert np.array_equal(codec.decode(enc.data), enc.recon)
        h.update(as_version_1(enc.data))
    assert len(photos) == 3
    assert h.hexdigest() == expected
