"""CompressAI's zoo weights as lic checkpoints, offline: a state dict written from an untrained zoo
model of the same quality sits in torch.hub's cache under the file name the zoo's URL expects, so
the real loading path (compressai.zoo, pretrained=True, torch.hub) runs; our streams and images are
compared with CompressAI's own compress() and decompress() on the same weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from compressai.zoo import mbt2018_mean

from conftest import run_cli
from lic import bitstream
from lic.checkpoint import load_checkpoint, training_lambda
from lic.codec import Codec, pad
from lic.data import to_tensor, to_uint8
from lic.zoo import cached_file, zoo_source


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache for this test."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def place_untrained(quality: int) -> Path:
    torch.manual_seed(quality)
    net = mbt2018_mean(quality=quality)  # untrained, same architecture as the published weights
    net.update(force=True)
    path = cached_file(zoo_source(quality)["url"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.parametrize("quality", [1, 5])
def test_import_codes_like_compressai(hub: Path, tmp_path: Path, photo: np.ndarray, quality: int) -> None:
    place_untrained(quality)
    out = tmp_path / f"q{quality}.ckpt"
    assert run_cli("import", "--quality", quality, "-o", out) == 0
    model, obj = load_checkpoint(out)
    src = obj["meta"]["source"]
    assert (model.N, model.M) == ((128, 192) if quality == 1 else (192, 320))
    assert src["url"].endswith(f"mbt2018-mean-{quality}-{src['url'].split('-')[-1]}") and src["quality"] == quality
    assert training_lambda(obj) == {1: 0.0018, 5: 0.025}[quality] and not src["hash_matches_url"]
    codec = Codec.from_checkpoint(out)
    enc = codec.encode(photo, with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)

    theirs = mbt2018_mean(quality=quality, pretrained=True).eval()  # CompressAI on the same weights
    theirs.update(force=True)
    h, w = photo.shape[:2]
    with torch.inference_mode():
        x = pad(to_tensor(photo))
        c = theirs.compress(x)
        their_img = to_uint8(theirs.decompress(c["strings"], c["shape"])["x_hat"][..., :h, :w])
        a = model.analyze(x)  # float64 h_s, means snapped to 2^-16; CompressAI's h_s is float32
        ours_k = model.quantizer.quantize(a["y"], a["means"], a["scales"])
        their_k = theirs.gaussian_conditional.quantize(a["y"], "symbols", theirs.h_s(a["z_hat"]).chunk(2, 1)[1])
    their_bytes = sum(len(s[0]) for s in c["strings"])
    header = len(enc.data) - len(bitstream.unpack(enc.data, 10**8)[1]) - len(bitstream.unpack(enc.data, 10**8)[2])
    assert abs((len(enc.data) - header) - their_bytes) <= 16, (len(enc.data), header, their_bytes)
    differing = float((ours_k != their_k).float().mean())
    print(f"quality {quality}: {differing:.2e} of the indices differ from CompressAI's ({ours_k.numel()} in all)")
    assert differing < 1e-3
    assert int(np.abs(codec.decode(enc.data).astype(int) - their_img.astype(int)).max()) <= 1


def test_no_cache_and_no_network_is_one_line(tmp_path: Path) -> None:
    """A proxy on a closed loopback port stands in for 'no network': nothing leaves this machine."""
    env = {"PATH": "/usr/bin:/bin", "TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path),
           "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": ""}
    proc = subprocess.run([sys.executable, "-m", "lic", "import", "--quality", "3", "-o", str(tmp_path / "q3.ckpt")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cannot download" in proc.stderr and "mbt2018-mean-3-" in proc.stderr and "place that file at" in proc.stderr
    assert not (tmp_path / "q3.ckpt").exists()


def test_bad_quality_and_corrupt_cache_are_refused(hub: Path, tmp_path: Path) -> None:
    assert run_cli("import", "--quality", "9", "-o", tmp_path / "x.ckpt") == 2
    path = cached_file(zoo_source(2)["url"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    assert run_cli("import", "--quality", "2", "-o", tmp_path / "x.ckpt") == 2
    assert not (tmp_path / "x.ckpt").exists()  # nothing written
