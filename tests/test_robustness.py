"""Failure behaviour: hostile bitstreams (fuzzing), absurd headers, kills, cross-process decoding.

Every case either decodes or ends with the project's own one-line error (``LicError``).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from lic import bitstream
from lic.checkpoint import read_checkpoint
from lic.codec import Codec
from lic.errors import LicError


@pytest.fixture(scope="module")
def codec(tiny_ckpt: Path) -> Codec:
    return Codec.from_checkpoint(tiny_ckpt)


@pytest.fixture(scope="module", params=["tiny_ckpt", "ctx_ckpt", "ar_ckpt"])
def any_codec(request: pytest.FixtureRequest) -> Codec:
    """The hyperprior's codec, the channel-context model's and a spatial context model's."""
    return Codec.from_checkpoint(request.getfixturevalue(request.param))


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """Bit flips, truncation, byte overwrites or insertions; often with a re-forged checksum so
    that the mutation reaches the header checks and the rANS decoders."""
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 4)):
            pos = rng.integers(len(b))
            b[pos] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        b = b[: rng.integers(len(b))]
    elif kind == 2:
        b[rng.integers(len(b))] = rng.integers(256)
    else:
        pos = rng.integers(len(b))
        b[pos:pos] = bytes(rng.integers(0, 256, rng.integers(1, 9)).astype(np.uint8))
    if rng.random() < 0.7 and len(b) > 4:
        b[-4:] = struct.pack(">I", zlib.crc32(bytes(b[:-4])))
    return bytes(b)


def fuzz(codec: Codec, photo: np.ndarray, cases: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    outcomes: dict[str, int] = {"decoded": 0, "refused": 0}
    streams = [codec.encode(photo[:70, :90].copy(), codec.quantizer(q)).data for q in ("usq", "tcq")]
    for i in range(cases):
        data = mutate(streams[i % 2], rng)
        try:
            out = codec.decode(data)
            assert out.dtype == np.uint8 and out.ndim == 3
            outcomes["decoded"] += 1
        except LicError:
            outcomes["refused"] += 1
    return outcomes


def test_fuzzed_streams_decode_or_are_refused(any_codec: Codec, photo: np.ndarray) -> None:
    outcomes = fuzz(any_codec, photo, 300, seed=0)
    assert sum(outcomes.values()) == 300 and outcomes["refused"] > 0


@pytest.mark.slow
def test_fuzzed_streams_at_scale(any_codec: Codec, photo: np.ndarray) -> None:
    outcomes = fuzz(any_codec, photo, 10_000, seed=1)
    print(f"fuzz 10000 cases: {outcomes}")
    assert sum(outcomes.values()) == 10_000


def _forge(header: bytes, rest: bytes = b"\x00\x00" + b"\x00\x00\x00\x00" * 2) -> bytes:
    body = header + rest
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize("height,width", [(0, 10), (10, 0), (2**31, 1), (65536, 65536), (2**32 - 1, 2**32 - 1)])
def test_absurd_sizes_are_refused_before_allocating(codec: Codec, height: int, width: int) -> None:
    head = bitstream.HEAD.pack(bitstream.MAGIC, bitstream.VERSION, 0, bitstream.model_id("mean-scale-hyperprior"),
                               bytes.fromhex(codec.fingerprint)[:8],
                               height, width)
    with pytest.raises(LicError, match="invalid image size"):
        codec.decode(_forge(head))


@pytest.mark.parametrize("data,match", [
    (b"", "too short"),
    (b"GIF89a" + b"\x00" * 40, "bad magic"),
    (bitstream.MAGIC + b"\x09" + b"\x00" * 40, "version"),
])
def test_not_our_streams_are_refused(codec: Codec, data: bytes, match: str) -> None:
    with pytest.raises(LicError, match=match):
        codec.decode(data)


def test_huge_length_field_is_refused(codec: Codec, photo: np.ndarray) -> None:
    data = bytearray(codec.encode(photo[:64, :64].copy()).data)
    qlen_at = bitstream.HEAD.size
    zlen_at = qlen_at + 2
    data[zlen_at : zlen_at + 4] = struct.pack(">I", 2**32 - 1)
    data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))
    with pytest.raises(LicError, match="past the end"):
        codec.decode(bytes(data))


def test_version_1_streams_still_decode(codec: Codec, photo: np.ndarray) -> None:
    """Format version 1 had no model byte (its streams are all a hyperprior's): they decode as before."""
    from conftest import as_version_1

    data = codec.encode(photo[:64, :80].copy()).data
    old = as_version_1(data)
    assert bitstream.unpack(old, 10**8)[1:] == bitstream.unpack(data, 10**8)[1:]
    assert np.array_equal(codec.decode(old), codec.decode(data))


_CROSS = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from lic import bitstream
from lic.codec import Codec, pad
from lic.data import to_tensor
from PIL import Image
codec = Codec.from_checkpoint(sys.argv[2])
if sys.argv[3] == "encode":
    rgb = np.asarray(Image.open(sys.argv[4]).convert("RGB"))[:200, :260].copy()
    for q in ("usq", "tcq"):
        enc = codec.encode(rgb, codec.quantizer(q), with_recon=True)
        open(sys.argv[5] + q + ".lic", "wb").write(enc.data)
        np.save(sys.argv[5] + q + ".npy", enc.recon)
        x = pad(to_tensor(rgb))
        with torch.inference_mode():
            np.save(sys.argv[5] + q + ".y.npy", codec.model.compress(x, codec.quantizer(q))["y_hat"].numpy())
else:
    for q in ("usq", "tcq"):
        data = open(sys.argv[5] + q + ".lic", "rb").read()
        np.save(sys.argv[5] + q + ".dec.npy", codec.decode(data))
        header, z, y = bitstream.unpack(data, 10**8)
        shape = torch.Size((-(-header.height // 64), -(-header.width // 64)))
        with torch.inference_mode():
            out = codec.model.decompress([[y], [z]], shape, codec.quantizer(q))
        np.save(sys.argv[5] + q + ".y.dec.npy", out["y_hat"].numpy())
"""


@pytest.mark.parametrize("pinned,model", [(False, "tiny_ckpt"), (True, "tiny_ckpt"), (False, "ctx_ckpt"),
                                          (False, "ar_ckpt")])
def test_stream_made_with_two_threads_decodes_exactly_with_one(tmp_path: Path, test_images: Path, pinned: bool,
                                                                model: str, request: pytest.FixtureRequest) -> None:
    """Latents (hence table indices) always decode bit-exactly across thread counts, for the
    hyperprior, the channel-context model and a spatial context model; the image too once the
    synthesis threads are pinned (``LIC_SYNTHESIS_THREADS``)."""
    tiny_ckpt = request.getfixturevalue(model)
    script = tmp_path / "cross.py"
    script.write_text(_CROSS)
    prefix = str(tmp_path / "s-")
    image = str(test_images / "coffee.png")
    env = dict(os.environ)
    env.pop("LIC_SYNTHESIS_THREADS", None)
    if pinned:
        env["LIC_SYNTHESIS_THREADS"] = "1"
    for threads, mode in ((2, "encode"), (1, "decode")):
        subprocess.run([sys.executable, str(script), str(threads), str(tiny_ckpt), mode, image, prefix], check=True,
                       env=env)
    for q in ("usq", "tcq"):
        assert np.array_equal(np.load(prefix + q + ".y.npy"), np.load(prefix + q + ".y.dec.npy")), q
        if pinned:
            assert np.array_equal(np.load(prefix + q + ".npy"), np.load(prefix + q + ".dec.npy")), q


def test_sigkill_during_training_then_resume_matches_uninterrupted(tmp_path: Path, train_images: Path) -> None:
    from conftest import TINY, TINY_TRAIN
    from dataclasses import replace

    from lic.train import train

    cfg = replace(TINY_TRAIN, steps=120, checkpoint_every=5)
    full = tmp_path / "full.ckpt"
    train(TINY, cfg, train_images, full, progress=False)
    cut = tmp_path / "cut.ckpt"
    args = [sys.executable, "-m", "lic", "train", "--lmbda", str(cfg.lmbda), "--steps", str(cfg.steps),
            "--channels", "16", "16", "--patch-size", "64", "--batch-size", "2", "--checkpoint-every", "5",
            "--images", str(train_images), "-o", str(cut)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not cut.exists() and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    step = read_checkpoint(cut)["train_state"]["step"]
    assert step < cfg.steps, "the run finished before it could be killed"
    assert subprocess.run(args + ["--resume"], capture_output=True).returncode == 0
    assert read_checkpoint(cut)["fingerprint"] == read_checkpoint(full)["fingerprint"]


def test_sigkill_during_retraining_then_resume_matches_uninterrupted(tmp_path: Path, tiny_ckpt: Path,
                                                                      train_images: Path) -> None:
    """``lic retrain hyper-decoder`` killed between its states, then ``--resume``: the weights (held-out
    validation and online TCQ's decoder weighting included) equal an uninterrupted run's. Every mode
    saves and resumes through the same code; this one has the most state."""
    from lic.config import LatentsConfig
    from lic.latents import make_latents

    data = make_latents(tiny_ckpt, tmp_path / "d.zarr", train_images, "tcq",
                        cfg=LatentsConfig(patches=16, patch_size=64, chunk=4), progress=False)
    common = [sys.executable, "-m", "lic", "retrain", "hyper-decoder", "-m", str(tiny_ckpt), "--latents", str(data),
              "--steps", "90", "--batch-size", "2", "--checkpoint-every", "4", "--validation", "0.25",
              "--validate-every", "7", "--weighting-every", "5", "--lr", "0.001"]
    full, cut = tmp_path / "full.ckpt", tmp_path / "cut.ckpt"
    assert subprocess.run(common + ["-o", str(full)], capture_output=True).returncode == 0
    proc = subprocess.Popen(common + ["-o", str(cut)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            try:
                if read_checkpoint(cut)["retrain_state"]["step"] >= 20:
                    break
            except (LicError, KeyError):
                pass
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    step = read_checkpoint(cut)["retrain_state"]["step"]
    assert step < 90, "the run finished before it could be killed"
    assert subprocess.run(common + ["-o", str(cut)], capture_output=True).returncode == 2  # no --resume: refused
    assert subprocess.run(common + ["-o", str(cut), "--resume"], capture_output=True).returncode == 0
    resumed, whole = read_checkpoint(cut), read_checkpoint(full)
    assert resumed["fingerprint"] == whole["fingerprint"] and "retrain_state" not in resumed
    assert resumed["meta"]["retrain"]["resumed_at"] == [step] and whole["meta"]["retrain"]["resumed_at"] == []
    assert resumed["meta"]["retrain"]["validation"]["history"] == whole["meta"]["retrain"]["validation"]["history"]
    again = subprocess.run(common + ["-o", str(cut), "--resume"], capture_output=True)
    assert again.returncode == 0 and read_checkpoint(cut)["fingerprint"] == whole["fingerprint"]  # finished: kept
    changed = subprocess.run(common + ["-o", str(cut), "--resume", "--lr", "0.002"], capture_output=True, text=True)
    assert changed.returncode == 2 and "retrained with another config" in changed.stderr


@pytest.mark.parametrize("shards", [1, 2])
def test_sigkill_during_latent_generation_then_resume_matches_single_run(tmp_path: Path, tiny_ckpt: Path,
                                                                         train_images: Path, shards: int) -> None:
    """One process, or two shards at once of which one is killed: after ``--resume`` the group
    equals an uninterrupted single-process run (the same samples, the same indices)."""
    import zarr

    from lic.config import LatentsConfig
    from lic.latents import ARRAYS, make_latents, open_latents

    whole = make_latents(tiny_ckpt, tmp_path / "whole.zarr", train_images,
                         cfg=LatentsConfig(patches=64, patch_size=64, chunk=2), progress=False)
    cut = tmp_path / "cut.zarr"
    args = [sys.executable, "-m", "lic", "latents", "make", "-m", str(tiny_ckpt), "--patches", "64",
            "--patch-size", "64", "--chunk", "2", "--images", str(train_images), "-o", str(cut)]
    victim = args + ["--shard", f"{shards - 1}/{shards}"]
    other = [subprocess.Popen(args + ["--shard", f"{i}/{shards}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(shards - 1)]
    proc = subprocess.Popen(victim, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            try:  # the victim's range is the last 32 // shards chunks
                if zarr.open_group(cut, mode="r")["done"][-32 // shards:].sum() >= 3:
                    break
            except Exception:  # noqa: BLE001 - the group may not exist yet, or be mid-write
                pass
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    for p in other:
        assert p.wait() == 0, p.stderr.read().decode()
    assert not zarr.open_group(cut, mode="r").attrs.get("complete"), "generation finished before the kill"
    with pytest.raises(LicError, match="incomplete"):
        open_latents(cut)
    assert subprocess.run(victim + ["--resume"], capture_output=True).returncode == 0
    a, b = open_latents(whole), open_latents(cut)
    for key in ARRAYS:
        assert np.array_equal(a[key][:], b[key][:]), key
    assert not list(tmp_path.glob(".cut.zarr.*.tmp")), "a shard left its unused group behind"


@pytest.mark.parametrize("name,weights,config", [
    ("hyperprior-usq.lic", "../tiny-weights.pt", {"N": 16, "M": 16}),
    ("hyperprior-tcq.lic", "../tiny-weights.pt", {"N": 16, "M": 16}),
    ("mbt2018-tcq.lic", "mbt2018-weights.pt", {"architecture": "mbt2018", "N": 8, "M": 8}),
])
def test_committed_version_2_streams_still_decode(name: str, weights: str, config: dict) -> None:
    """``data/v2``: format-2 streams (the model field one byte, an index into ARCHITECTURES) written by
    the build before format 3, and the SHA-256 of what that build decoded them to."""
    import hashlib
    import json

    import torch

    from lic.checkpoint import weights_fingerprint
    from lic.config import ModelConfig
    from lic.models import build_model

    root = Path(__file__).parent / "data" / "v2"
    model = build_model(ModelConfig(**config))
    model.update(force=True)  # sizes the scale table; the tables are rebuilt after loading
    torch.nn.Module.load_state_dict(model, torch.load(root / weights, weights_only=True), strict=False)
    model.update(force=True)
    data = (root / name).read_bytes()
    assert data[4] == 2
    codec = Codec(model.eval(), weights_fingerprint(model.state_dict()))
    decoded = codec.decode(data)
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == json.loads((root / "decoded.json").read_text())[name]
    other = bytearray(data[:-4])
    other[6] = 2  # a scale hyperprior's index: refused by the model check, not misread
    forged = bytes(other) + struct.pack(">I", zlib.crc32(bytes(other)))
    with pytest.raises(LicError, match="made with a scale-hyperprior model"):
        codec.decode(forged)
