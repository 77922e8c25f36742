"""Every model kind (lic/models/): bit-exact round trips with USQ and TCQ at sizes that are not a
multiple of 64, the decoder's entropy parameters equal to the encoder's, the estimated rate within 3%
of the real stream, phases 2 and 3, and agreement with CompressAI's own coding on the zoo's classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_TRAIN
from lic import bitstream
from lic.checkpoint import load_checkpoint
from lic.codec import Codec, pad
from lic.config import ModelConfig, TrainConfig
from lic.data import to_tensor, to_uint8
from lic.train import train

# cheng2020-attn codes as cheng2020-anchor does (they differ only in g_a and g_s): it is among the zoo's
# kinds below, not trained here
KINDS = ["scale-hyperprior", "mbt2018", "cheng2020-anchor"]
QUANTIZERS = [("usq", {}), ("tcq", {"states": 4}), ("tcq", {"states": 8})]


@pytest.fixture(scope="module", params=KINDS)
def kind_ckpt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    """A small model of each kind (the zoo's classes with N = M = 16), trained long enough that its
    entropy model describes its latents (a model of a few steps codes nearly nothing)."""
    out = tmp_path_factory.mktemp("kinds") / f"{request.param}.ckpt"
    cfg = TrainConfig(**{**TINY_TRAIN.__dict__, "steps": 150, "lr": 3e-3, "checkpoint_every": 150})
    train(ModelConfig(N=16, M=16, architecture=request.param), cfg, train_images, out, progress=False)
    return out


@pytest.mark.parametrize("name,params", QUANTIZERS)
@pytest.mark.parametrize("size", [(150, 203), (97, 130)])
def test_round_trips_are_bit_exact(kind_ckpt: Path, photo: np.ndarray, name: str, params: dict,
                                   size: tuple[int, int]) -> None:
    codec = Codec.from_checkpoint(kind_ckpt)
    rgb = photo[: size[0], : size[1]].copy()
    enc = codec.encode(rgb, codec.quantizer(name, **params), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    header = bitstream.unpack(enc.data, 10**8)[0]
    assert bitstream.model_name(header.model) == codec.model.config.architecture


@pytest.mark.parametrize("name,params", QUANTIZERS)
def test_the_decoder_computes_the_encoders_parameters(kind_ckpt: Path, photo: np.ndarray, name: str,
                                                      params: dict) -> None:
    """``means``, ``scales`` and ``y_hat`` of every position equal the encoder's (``torch.equal``)."""
    codec = Codec.from_checkpoint(kind_ckpt)
    model, q = codec.model, codec.quantizer(name, **params)
    with torch.inference_mode():
        x = pad(to_tensor(photo))
        a = model.analyze(x)
        c = model.code_latents(a, q)
        enc = model.compress(x, q)
        dec = model.decompress(enc["strings"], enc["shape"], q)
    assert torch.equal(enc["y_hat"], dec["y_hat"]) and torch.equal(c["y_hat"], dec["y_hat"])
    for key in ("means", "scales"):
        if key in dec:
            assert torch.equal(c[key], dec[key]), key
    if model.config.architecture == "scale-hyperprior":
        assert not c["means"].any()


@pytest.mark.parametrize("name,params", QUANTIZERS)
def test_estimated_rate_is_the_streams_within_3_percent(kind_ckpt: Path, test_images: Path, name: str,
                                                        params: dict) -> None:
    codec = Codec.from_checkpoint(kind_ckpt)
    q = codec.quantizer(name, **params)
    x = pad(to_tensor(np.array(Image.open(test_images / "coffee.png").convert("RGB"))))
    with torch.inference_mode():
        c = codec.model.code_latents(codec.model.analyze(x), q)
        y_string = codec.model.compress(x, q)["strings"][0][0]
    estimated = float(-torch.log2(q.likelihoods(c["indices"], c["scales"])).sum())
    assert abs(len(y_string) * 8 - estimated) <= 0.03 * estimated, (len(y_string) * 8, estimated)


@pytest.mark.parametrize("quantizer", ["usq", "tcq"])
def test_phases_2_and_3_on_every_kind(tmp_path: Path, kind_ckpt: Path, train_images: Path, quantizer: str) -> None:
    """A dataset keeps the ``means`` and ``scales`` each position was coded with; the decoder and the
    control retrain on it, and only ``g_s`` moves."""
    from lic.config import LatentsConfig, RetrainConfig
    from lic.latents import make_latents, open_latents
    from lic.retrain import retrain

    dataset = make_latents(kind_ckpt, tmp_path / "d.zarr", train_images, quantizer,
                           cfg=LatentsConfig(patches=4, patch_size=64, chunk=2), progress=False)
    model, _ = load_checkpoint(kind_ckpt)
    group = open_latents(dataset)
    q = model.quantizer_for(quantizer)
    with torch.inference_mode():
        x = torch.from_numpy(group["x"][:2]).float() / 255
        c = model.code_latents(model.analyze(x), q)
    assert np.array_equal(group["indices"][:2], c["indices"].numpy())
    assert np.array_equal(group["means"][:2], c["means"].numpy())
    for mode in ("decoder", "control"):
        retrain(RetrainConfig(mode, steps=2, batch_size=2), kind_ckpt, dataset, tmp_path / f"{mode}.ckpt",
                progress=False)
        retrained = load_checkpoint(tmp_path / f"{mode}.ckpt")[0]
        assert type(retrained) is type(model)
        before, after = dict(model.named_parameters()), dict(retrained.named_parameters())
        moved = {n for n in before if not torch.equal(before[n], after[n])}
        assert moved and all(n.startswith("g_s.") for n in moved)


def _untrained_zoo(architecture: str, quality: int, hub: Path) -> None:
    """An untrained zoo model of ``architecture`` in torch.hub's cache, under the zoo's file name."""
    from lic import compat
    from lic.zoo import cached_file, zoo_source

    torch.manual_seed(quality)
    net = compat.zoo_model(architecture, quality)
    path = cached_file(zoo_source(quality, architecture)["url"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


@pytest.mark.parametrize("architecture", ["bmshj2018-hyperprior", "mbt2018", "cheng2020-anchor", "cheng2020-attn"])
def test_every_zoo_kind_imports_and_codes_like_compressai(architecture: str, tmp_path: Path, photo: np.ndarray,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    """On the same (untrained) weights: our stream has the length of CompressAI's own ``compress()``
    within a few bytes, our header aside; the decoded images agree within one level; and the share of
    indices that differ (our float64 entropy parameters against CompressAI's float32) is reported."""
    from conftest import run_cli
    from lic import compat

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    _untrained_zoo(architecture, 1, tmp_path / "hub")
    assert run_cli("import", "--architecture", architecture, "--quality", "1", "-o", tmp_path / "z.ckpt") == 0
    codec = Codec.from_checkpoint(tmp_path / "z.ckpt")
    enc = codec.encode(photo, with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)
    theirs = compat.zoo_model(architecture, 1, pretrained=True).eval()
    theirs.update(force=True)
    h, w = photo.shape[:2]
    with torch.inference_mode():
        x = pad(to_tensor(photo))
        c = theirs.compress(x)
        their_img = to_uint8(theirs.decompress(c["strings"], c["shape"])["x_hat"][..., :h, :w])
        ours = codec.model.code_latents(codec.model.analyze(x), codec.quantizer())["y_hat"]
        their_y_hat = compat.decoded_latents(theirs, c["strings"], c["shape"])
    _, z, y = bitstream.unpack(enc.data, 10**8)
    their_bytes = sum(len(s[0]) for s in c["strings"])
    assert abs(len(z) + len(y) - their_bytes) <= 16, (len(z) + len(y), their_bytes)
    assert int(np.abs(codec.decode(enc.data).astype(int) - their_img.astype(int)).max()) <= 1
    differ = float(((ours - their_y_hat).abs() > 0.5).float().mean())  # a different index: y_hat a level away
    print(f"{architecture}: {differ:.2e} of {ours.numel()} indices differ from CompressAI's; streams "
          f"{len(z) + len(y)} against {their_bytes} bytes")
    assert differ < 1e-3


@pytest.mark.parametrize("quantizer", ["usq", "tcq"])
def test_phase_4_on_a_spatial_context_model(tmp_path: Path, ar_ckpt: Path, train_images: Path, quantizer: str) -> None:
    """Stale and online phase 4 move ``h_s``, the context prediction and the entropy parameters with
    ``g_s``; stale records how far its teacher-forced context (the dataset's ``y_hat``) drifts from the
    new ``y_hat``, starting at 0 (the means have not moved yet)."""
    from lic.config import LatentsConfig, RetrainConfig
    from lic.latents import make_latents
    from lic.retrain import retrain

    dataset = make_latents(ar_ckpt, tmp_path / "d.zarr", train_images, quantizer,
                           cfg=LatentsConfig(patches=4, patch_size=64, chunk=2), progress=False)
    model, _ = load_checkpoint(ar_ckpt)
    for strategy in ("online", "stale"):
        out = tmp_path / f"{strategy}.ckpt"
        rec = retrain(RetrainConfig("hyper-decoder", steps=3, batch_size=2, strategy=strategy, lmbda=0.01), ar_ckpt,
                      dataset, out, progress=False, log_every=1)
        retrained = load_checkpoint(out)[0]
        before, after = dict(model.named_parameters()), dict(retrained.named_parameters())
        moved = {n.split(".")[0] for n in before if not torch.equal(before[n], after[n])}
        assert moved == {"g_s", "h_s", "context_prediction", "entropy_parameters"}, moved
        if strategy == "stale":
            drift = [d for _, d in rec["context_drift"]]
            assert len(drift) == 3 and drift[0] < 1e-4 < drift[-1]
        else:
            assert "context_drift" not in rec


@pytest.mark.parametrize("part", ["context_prediction", "entropy_parameters"])
def test_a_spatial_models_dataset_goes_stale_when_its_context_model_changes(tmp_path: Path, ar_ckpt: Path,
                                                                          train_images: Path, part: str) -> None:
    """The context prediction and the entropy parameters decide the means and scales of a spatial
    model's indices: a change to either alone makes its latent dataset stale for phase 3."""
    from lic.checkpoint import read_checkpoint, weights_fingerprint
    from lic.config import LatentsConfig, RetrainConfig
    from lic.errors import LicError
    from lic.latents import make_latents
    from lic.retrain import retrain

    dataset = make_latents(ar_ckpt, tmp_path / "d.zarr", train_images, "usq",
                           cfg=LatentsConfig(patches=2, patch_size=64, chunk=2), progress=False)
    obj = read_checkpoint(ar_ckpt)
    name = next(n for n in sorted(obj["state_dict"]) if n.startswith(part + ".") and n.endswith("weight"))
    obj["state_dict"][name].view(-1)[0] += 1e-3
    obj["fingerprint"] = weights_fingerprint(obj["state_dict"])
    changed = tmp_path / "changed.ckpt"
    torch.save(obj, changed)
    with pytest.raises(LicError, match="stale"):
        retrain(RetrainConfig("decoder", steps=1, batch_size=2), changed, dataset, tmp_path / "r.ckpt", progress=False)


def test_the_online_pass_quantizes_as_the_coder_does(ar_ckpt: Path, photo: np.ndarray) -> None:
    """Phase 4's online pass (float32, position by position) chooses the coder's indices but for
    elements at a rounding boundary, and its stale pass rebuilds the coder's ``y_hat``."""
    model, _ = load_checkpoint(ar_ckpt)
    q = model.quantizer_for("usq")
    with torch.inference_mode():
        a = model.analyze(pad(to_tensor(photo)))
        c = model.code_latents(a, q)
        y_hat, lik = model.requantize(c["indices"], a["z_hat"], q, c["y_hat"])
        online, _ = model.requantize(a["y"], a["z_hat"], q)
    assert torch.allclose(y_hat, c["y_hat"], atol=1e-3) and lik.shape == y_hat.shape
    assert (online - c["y_hat"]).abs().gt(0.5).float().mean() < 1e-2
