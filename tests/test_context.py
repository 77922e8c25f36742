"""The channel-context model (lic/context.py): exact slice-by-slice coding with USQ and TCQ, the
decoder's contexts equal to the encoder's, and the estimated rate against the real stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lic import bitstream
from lic.models import build_model
from lic.checkpoint import load_checkpoint
from lic.codec import Codec, pad
from lic.config import ModelConfig
from lic.models import ChannelContext
from lic.data import to_tensor
from lic.errors import LicError
from lic.models import Hyperprior

QUANTIZERS = [("usq", {}), ("tcq", {"states": 4}), ("tcq", {"states": 8})]


@pytest.fixture(scope="module")
def codec(ctx_ckpt: Path) -> Codec:
    return Codec.from_checkpoint(ctx_ckpt)


@pytest.mark.parametrize("name,params", QUANTIZERS)
@pytest.mark.parametrize("size", [(150, 203), (64, 64), (97, 130)])
def test_round_trip_is_bit_exact(codec: Codec, photo: np.ndarray, name: str, params: dict,
                                 size: tuple[int, int]) -> None:
    assert isinstance(codec.model, ChannelContext) and len(codec.model.groups) == 4
    rgb = photo[: size[0], : size[1]].copy()
    enc = codec.encode(rgb, codec.quantizer(name, **params), with_recon=True)
    assert np.array_equal(codec.decode(enc.data), enc.recon)


def test_the_header_names_the_model_kind(codec: Codec, tiny_ckpt: Path, photo: np.ndarray) -> None:
    data = codec.encode(photo[:64, :64].copy()).data
    assert bitstream.unpack(data, 10**8)[0].model == bitstream.model_id("channel-context")
    with pytest.raises(LicError, match="made with a channel-context model, but this checkpoint is a mean-scale"):
        Codec.from_checkpoint(tiny_ckpt).decode(data)


@pytest.mark.parametrize("name,params", QUANTIZERS)
def test_decoder_computes_the_encoders_contexts(codec: Codec, photo: np.ndarray, name: str, params: dict) -> None:
    q = codec.quantizer(name, **params)
    with torch.inference_mode():
        enc = codec.model.compress(pad(to_tensor(photo)), q)
        dec = codec.model.decompress(enc["strings"], enc["shape"], q)
    for key in ("y_hat", "means", "scales"):
        assert torch.equal(enc[key], dec[key]), key
    assert not torch.equal(enc["means"], codec.model.hyper_parameters(  # the context does move them
        codec.model.entropy_bottleneck.decompress(enc["strings"][1], enc["shape"]))[1])


@pytest.mark.parametrize("name,params", QUANTIZERS)
def test_estimated_rate_is_the_streams_within_3_percent(codec: Codec, test_images: Path, name: str,
                                                        params: dict) -> None:
    q = codec.quantizer(name, **params)
    x = pad(to_tensor(np.array(Image.open(test_images / "coffee.png").convert("RGB"))))
    with torch.inference_mode():
        a = codec.model.analyze(x)
        c = codec.model.code_latents(a, q)
        y_string = codec.model.compress(x, q)["strings"][0][0]
    estimated = float(-torch.log2(q.likelihoods(c["indices"], c["scales"])).sum())
    assert abs(len(y_string) * 8 - estimated) <= 0.03 * estimated, (len(y_string) * 8, estimated)


def test_a_fresh_context_model_codes_as_its_hyperprior(tiny_ckpt: Path, photo: np.ndarray) -> None:
    """The context transforms start at zero: from a hyperprior's weights, every slice's ``means``
    and ``scales`` are the hyperprior's, and so are the streams' latents."""
    base, _ = load_checkpoint(tiny_ckpt)
    ctx = build_model(ModelConfig(N=16, M=16, architecture="channel-context", slices=4))
    missing, unexpected = ctx.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("cc.") for k in missing)
    ctx.update(force=True)
    x = pad(to_tensor(photo))
    with torch.inference_mode():
        a = base.analyze(x)
        c = ctx.eval().code_latents(a, ctx.quantizer)
        y_hat = base.compress(x)["y_hat"]
    assert torch.equal(c["means"], a["means"]) and torch.equal(c["scales"], a["scales"])
    assert torch.equal(c["y_hat"], y_hat)


@pytest.mark.parametrize("context", ["perturbed", "quantized"])
def test_training_reaches_the_context_transforms(context: str) -> None:
    model = build_model(ModelConfig(N=8, M=8, architecture="channel-context", slices=2, context=context)).train()
    out = model(torch.rand(2, 3, 64, 64))
    loss = out["x_hat"].square().mean() - sum(torch.log2(lik).sum() for lik in out["likelihoods"].values())
    loss.backward()
    assert model.cc[1][-1].weight.grad.abs().sum() > 0  # the last slice's context learns from the first


@pytest.mark.parametrize("quantizer", ["usq", "tcq"])
def test_quantized_training_contexts_are_the_coders_levels(quantizer: str) -> None:
    """``context: quantized`` gives later slices the earlier ones as the coder quantizes them (TCQ:
    unweighted search), with the gradient of ``y`` passed straight through; ``perturbed`` the
    perturbed slice itself."""
    cfg = ModelConfig(N=8, M=8, architecture="channel-context", slices=2, quantizer=quantizer, context="quantized")
    model = build_model(cfg)
    model.update(force=True)
    gen = torch.Generator().manual_seed(0)
    y = (torch.randn(2, 4, 8, 8, generator=gen) * 3).requires_grad_(True)
    means, scales = torch.randn(2, 4, 8, 8, generator=gen), torch.rand(2, 4, 8, 8, generator=gen) + 0.5
    t = model.quantizer.perturb(y, means, scales)[0]
    ctx = model.training_context(y, t, means, scales)
    q = model.quantizer_for(quantizer, **({"weighting": "none"} if quantizer == "tcq" else {}))
    levels = q.dequantize(q.quantize(y.detach(), means, scales), means)
    assert torch.allclose(ctx, levels, atol=1e-5) and not torch.allclose(ctx, t, atol=1e-3)
    if quantizer == "usq":
        assert torch.allclose(ctx, torch.round(y - means) + means, atol=1e-5)
    (grad,) = torch.autograd.grad(ctx.sum(), y)
    assert torch.equal(grad, torch.ones_like(y))
    perturbed = build_model(ModelConfig(N=8, M=8, architecture="channel-context", slices=2, quantizer=quantizer))
    assert perturbed.training_context(y, t, means, scales) is t


@pytest.mark.parametrize("cfg,match", [({"slices": 5}, "divide M=16"), ({"slices": 0}, "divide"),
                                       ({"slices": 4, "context": "rounded"}, "unknown training context"),
                                       ({"architecture": "mean-scale-hyperprior", "slices": 0, "context": "quantized"},
                                        "no slice contexts"),
                                       ({"architecture": "mean-scale-hyperprior", "slices": 4}, "no channel slices"),
                                       ({"architecture": "pixelcnn"}, "unknown architecture")])
def test_bad_architectures_are_one_line(cfg: dict, match: str) -> None:
    with pytest.raises(LicError, match=match):
        ModelConfig(**{"N": 16, "M": 16, "architecture": "channel-context", **cfg})


def test_hyperprior_checkpoints_keep_their_config(tiny_ckpt: Path) -> None:
    model, obj = load_checkpoint(tiny_ckpt)
    assert type(model) is Hyperprior and "slices" not in obj["config"]


@pytest.mark.parametrize("quantizer", ["usq", "tcq"])
def test_phases_2_and_3_on_the_context_model(tmp_path: Path, ctx_ckpt: Path, train_images: Path,
                                             quantizer: str) -> None:
    """Its datasets keep each slice's own ``means`` and ``scales`` (those the indices were coded with);
    the decoder and the control retrain on them; phase 4 retrains h_s and the slice transforms too."""
    from lic.config import LatentsConfig, RetrainConfig
    from lic.latents import make_latents, open_latents
    from lic.retrain import retrain

    cfg = LatentsConfig(patches=4, patch_size=64, chunk=2)
    dataset = make_latents(ctx_ckpt, tmp_path / "d.zarr", train_images, quantizer, cfg=cfg, progress=False)
    group = open_latents(dataset)
    model, _ = load_checkpoint(ctx_ckpt)
    q = model.quantizer_for(quantizer)
    with torch.inference_mode():
        z_hat = torch.from_numpy(group["z_hat"][:])
        hyper_scales, hyper_means = model.hyper_parameters(z_hat)
        c = model.code_latents({"y": torch.from_numpy(group["y"][:]), "means": hyper_means, "scales": hyper_scales}, q)
    assert np.array_equal(group["indices"][:], c["indices"].numpy())
    assert np.array_equal(group["means"][:], c["means"].numpy()) and not torch.equal(c["means"], hyper_means)
    assert np.array_equal(group["scales"][:], c["scales"].numpy())
    for mode in ("decoder", "control"):
        retrain(RetrainConfig(mode, steps=2, batch_size=2), ctx_ckpt, dataset, tmp_path / f"{mode}.ckpt",
                progress=False)
        retrained = load_checkpoint(tmp_path / f"{mode}.ckpt")[0]
        assert isinstance(retrained, ChannelContext)
        assert not torch.equal(retrained.g_s[0].weight, model.g_s[0].weight)
        assert torch.equal(retrained.cc[3][0].weight, model.cc[3][0].weight)  # only g_s learns
    for strategy in ("online", "stale"):  # phase 4: h_s and the slice transforms learn with g_s
        out = tmp_path / f"hd-{strategy}.ckpt"
        retrain(RetrainConfig("hyper-decoder", steps=2, batch_size=2, strategy=strategy), ctx_ckpt, dataset, out,
                progress=False)
        retrained = load_checkpoint(out)[0]
        assert not torch.equal(retrained.cc[3][-1].weight, model.cc[3][-1].weight)
        assert not torch.equal(retrained.h_s[0].weight, model.h_s[0].weight)
        assert torch.equal(retrained.g_a[0].weight, model.g_a[0].weight)
    changed = build_model(model.config)  # only a slice transform moves: the dataset is stale for it
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.cc[2][-1].bias.add_(0.01)
    from lic.latents import staleness

    assert staleness(group, model) == [] and "encoder+hyper fingerprint" in staleness(group, changed)[0]


def test_phase_4_pass_quantizes_as_the_coder_does(ctx_ckpt: Path, photo: np.ndarray) -> None:
    """The online pass chooses the indices the coder chooses (float32 training parameters against
    the coder's float64 ones: equal but for elements at a rounding boundary), and its stale pass
    rebuilds the coder's ``y_hat`` from the coder's indices."""
    model, _ = load_checkpoint(ctx_ckpt)
    q = model.quantizer_for("usq")
    with torch.inference_mode():
        a = model.analyze(pad(to_tensor(photo)))
        c = model.code_latents(a, q)
        y_hat, lik = model.requantize(c["indices"], a["z_hat"], q)
        online, _ = model.requantize(a["y"], a["z_hat"], q)
    assert torch.allclose(y_hat, c["y_hat"], atol=1e-4) and lik.shape == y_hat.shape
    assert (online - c["y_hat"]).abs().gt(0.5).float().mean() < 1e-3


def test_cli_trains_a_context_model(tmp_path: Path, train_images: Path) -> None:
    from conftest import run_cli

    out = tmp_path / "c.ckpt"
    assert run_cli("train", "--lmbda", "0.01", "-o", out, "--steps", "2", "--channels", "8", "8", "--slices", "2",
                   "--patch-size", "64", "--batch-size", "1", "--images", train_images) == 0
    model, obj = load_checkpoint(out)
    assert isinstance(model, ChannelContext) and obj["config"]["slices"] == 2 and "context" not in obj["config"]
    assert run_cli("train", "--lmbda", "0.01", "-o", tmp_path / "q.ckpt", "--steps", "2", "--channels", "8", "8",
                   "--slices", "2", "--context", "quantized", "--patch-size", "64", "--batch-size", "1",
                   "--images", train_images) == 0
    assert load_checkpoint(tmp_path / "q.ckpt")[0].config.context == "quantized"
    assert run_cli("train", "--lmbda", "0.01", "-o", tmp_path / "bad.ckpt", "--channels", "8", "8",
                   "--slices", "3") == 2
