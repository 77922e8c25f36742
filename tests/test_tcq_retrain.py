"""Phase 4 on TCQ datasets: the ``online`` strategy (Viterbi per batch) and the ``stale`` one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY, TINY_TRAIN, run_cli
from lic.checkpoint import load_checkpoint, read_checkpoint, training_lambda
from lic.datasets import diff
from lic.config import LatentsConfig, ModelConfig, RetrainConfig, TrainConfig
from lic.latents import LatentDataset, generation_seconds, make_latents, open_latents
from lic.retrain import _step, retrain
from lic.train import train


@pytest.fixture(scope="module")
def tcq_ckpt(tmp_path_factory: pytest.TempPathFactory, train_images: Path) -> Path:
    """A tiny TCQ model trained long enough (200 steps, 2 s) for its scales to fit its residuals:
    the 20-step ``tiny_ckpt`` has scales below the scale table, where every rate is an escape."""
    out = tmp_path_factory.mktemp("tcq") / "tcq.ckpt"
    cfg = TrainConfig(**{**TINY_TRAIN.__dict__, "steps": 200, "batch_size": 4, "lr": 3e-3, "checkpoint_every": 200})
    train(ModelConfig(N=TINY.N, M=TINY.M, quantizer="tcq"), cfg, train_images, out, progress=False)
    return out


@pytest.fixture(scope="module")
def tcq_dataset(tmp_path_factory: pytest.TempPathFactory, tcq_ckpt: Path, train_images: Path) -> Path:
    cfg = LatentsConfig(patches=16, patch_size=128, chunk=8)
    return make_latents(tcq_ckpt, tmp_path_factory.mktemp("tcq") / "tcq.zarr", train_images, cfg=cfg, progress=False)


def _model_and_quantizer(tcq_ckpt: Path, dataset: Path):  # noqa: ANN202
    model, _ = load_checkpoint(tcq_ckpt)
    attrs = LatentDataset(dataset, ("x",)).attrs
    return model, model.quantizer_for(attrs["quantizer"], **attrs["quantizer_params"])


def test_online_step_chooses_the_indices_of_a_standalone_quantize(tcq_dataset: Path, tcq_ckpt: Path) -> None:
    """One ``online`` step quantizes the batch as ``quantize`` does with the same weights; its
    ``y_hat`` is the dequantized level of those indices around the current means."""
    model, q = _model_and_quantizer(tcq_ckpt, tcq_dataset)
    y, z_hat, x = LatentDataset(tcq_dataset, ("y", "z_hat", "x")).batch(torch.arange(8))
    seen = {}
    real_quantize = q.quantize

    def spy(*args: torch.Tensor) -> torch.Tensor:
        seen["k"] = real_quantize(*args)
        return seen["k"]

    q.quantize = spy  # an instance attribute: the step's own call, recorded
    _step(model, "hyper-decoder", [y, z_hat, x], 0.01, q=q)
    with torch.no_grad():
        scales, means = model.h_s(z_hat).chunk(2, 1)
    expected = real_quantize(y, means, scales)
    assert seen["k"].dtype == torch.int32 and torch.equal(seen["k"], expected)
    assert (expected != 0).any() and (expected % 2 != 0).any()  # a real path, not all zeros


def test_online_step_reaches_h_s_and_its_rate_is_the_bitstream(tcq_dataset: Path, tcq_ckpt: Path) -> None:
    """After one ``online`` step ``h_s`` has gradient, and the loss's rate term (TCQ's cell
    probabilities at continuous scales) is the real rANS length of the chosen indices within 3%."""
    model, q = _model_and_quantizer(tcq_ckpt, tcq_dataset)
    y, z_hat, x = LatentDataset(tcq_dataset, ("y", "z_hat", "x")).batch(torch.arange(16))
    model.zero_grad(set_to_none=True)
    loss, metrics = _step(model, "hyper-decoder", [y, z_hat, x], 0.01, q=q)
    loss.backward()
    last = model.h_s[-1].weight.grad
    M = model.M
    assert last[:M].abs().sum() > 0 and last[M:].abs().sum() > 0  # scales (rate) and means (distortion)
    with torch.no_grad():
        scales, means = model.h_s(z_hat).chunk(2, 1)
        k = q.quantize(y, means, scales)
        stream_bits = 8 * len(q.encode(k, scales))  # one stream: 16 small latents, one header
    model_bits = metrics["bpp_y"] * x.shape[0] * x.shape[2] * x.shape[3]
    assert model_bits == pytest.approx(stream_bits, rel=0.03)


def test_stale_strategy_keeps_the_dataset_indices(tcq_dataset: Path, tcq_ckpt: Path, tmp_path: Path) -> None:
    """``stale`` trains on the stored indices: its loss is that of the dataset's indices, which the
    current weights would not all choose again; ``online`` and ``stale`` give different models."""
    model, q = _model_and_quantizer(tcq_ckpt, tcq_dataset)
    k, z_hat, x = LatentDataset(tcq_dataset, ("indices", "z_hat", "x")).batch(torch.arange(8))
    loss, _ = _step(model, "hyper-decoder", [k, z_hat, x], 0.01, q=q)
    scales, means = model.h_s(z_hat).chunk(2, 1)
    expected = 0.01 * 255**2 * torch.mean((model.g_s(q.dequantize(k, means)) - x) ** 2) \
        - torch.log2(q.likelihoods(k, scales)).sum() / (x.shape[0] * x.shape[2] * x.shape[3])
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    recs = {}
    for strategy in ("online", "stale"):
        cfg = RetrainConfig("hyper-decoder", steps=3, batch_size=4, strategy=strategy)
        recs[strategy] = retrain(cfg, tcq_ckpt, tcq_dataset, tmp_path / f"{strategy}.ckpt", progress=False)
        assert recs[strategy]["config"]["strategy"] == strategy and recs[strategy]["quantizer"] == "tcq"
    a, b = (load_checkpoint(tmp_path / f"{s}.ckpt")[0] for s in ("online", "stale"))
    assert not torch.equal(a.h_s[-1].weight, b.h_s[-1].weight)


def test_cli_strategy(tcq_dataset: Path, tcq_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("retrain", "hyper-decoder", "-m", tcq_ckpt, "--latents", tcq_dataset, "--steps", "2",
                   "--strategy", "stale", "-o", tmp_path / "s.ckpt") == 0
    assert "stale indices" in capsys.readouterr().out
    assert run_cli("retrain", "hyper-decoder", "-m", tcq_ckpt, "--latents", tcq_dataset, "--steps", "2",
                   "--strategy", "later", "-o", tmp_path / "x.ckpt") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'later' is not one of 'online', 'stale'" in err
    assert not (tmp_path / "x.ckpt").exists()


def test_a_second_round_chains_its_dataset_and_its_time(tcq_dataset: Path, tcq_ckpt: Path, train_images: Path,
                                                        tmp_path: Path) -> None:
    """Round 2 of TCQ decoder retraining: the dataset made from the round-1 model names round 1's
    dataset as its parent and moved indices (the search weights follow the new decoder); the
    round-2 model records its round and a cumulative time with round 1's and the dataset's."""
    r1, r2 = tmp_path / "r1.ckpt", tmp_path / "r2.ckpt"
    first = retrain(RetrainConfig("decoder", steps=20, lr=1e-3, batch_size=4), tcq_ckpt, tcq_dataset, r1,
                    progress=False)
    second_data = make_latents(r1, tmp_path / "r2.zarr", train_images, cfg=LatentsConfig(patches=16, patch_size=128,
                               chunk=8), progress=False, parent=tcq_dataset)
    group = open_latents(second_data)
    lineage = group.attrs["lineage"]
    assert lineage["round"] == 2 and lineage["parent"]["path"] == str(tcq_dataset)
    assert lineage["parent"]["checkpoint_fingerprint"] == read_checkpoint(tcq_ckpt)["fingerprint"]
    assert lineage["checkpoint_fingerprint"] == read_checkpoint(r1)["fingerprint"]
    assert diff(tcq_dataset, second_data)["indices_differing"]["count"] > 0
    assert generation_seconds(group) > 0
    second = retrain(RetrainConfig("decoder", steps=2, batch_size=4), r1, second_data, r2, progress=False)
    assert first["round"] == 1 and second["round"] == 2
    assert second["cumulative_wall_s"] == pytest.approx(first["cumulative_wall_s"] + second["wall_s"]
                                                        + generation_seconds(group))


@pytest.mark.parametrize("first", ["hyper-decoder", "decoder"])
def test_phase_4_starts_from_a_retrained_model_at_its_lambda(tcq_dataset: Path, tcq_ckpt: Path, tmp_path: Path,
                                                              first: str) -> None:
    """A retrained checkpoint keeps no training state; its record carries the lambda, so a later
    round of phase 4 (the pipeline's stale round 2) starts from it without ``--lmbda``."""
    lmbda = training_lambda(read_checkpoint(tcq_ckpt))
    r1, r2 = tmp_path / "r1.ckpt", tmp_path / "r2.ckpt"
    retrain(RetrainConfig(first, steps=2, batch_size=4, **({"strategy": "stale"} if first == "hyper-decoder" else {})),
            tcq_ckpt, tcq_dataset, r1, progress=False)
    assert lmbda is not None and training_lambda(read_checkpoint(r1)) == lmbda
    rec = retrain(RetrainConfig("hyper-decoder", steps=2, batch_size=4, strategy="stale", allow_stale=True), r1,
                  tcq_dataset, r2, progress=False)
    assert rec["config"]["lmbda"] == lmbda and rec["round"] == 2


def test_validation_keeps_the_best_weights_on_held_out_patches(tcq_dataset: Path, tcq_ckpt: Path,
                                                               tmp_path: Path) -> None:
    """With ``validation``, the last patches never train, the loss on them is logged from step 0,
    and the saved weights are those of the lowest one (at a learning rate that ruins the model,
    the starting weights)."""
    cfg = RetrainConfig("hyper-decoder", steps=6, batch_size=4, lr=0.05, validation=0.25, validate_every=2)
    rec = retrain(cfg, tcq_ckpt, tcq_dataset, tmp_path / "v.ckpt", progress=False)
    v = rec["validation"]
    assert v["patches"] == 4 and [s for s, _ in v["history"]] == [0, 2, 4, 6]
    assert v["best_loss"] == min(loss for _, loss in v["history"])
    assert v["best_step"] == 0 and v["history"][-1][1] > v["best_loss"]
    kept, base = load_checkpoint(tmp_path / "v.ckpt")[0], load_checkpoint(tcq_ckpt)[0]
    assert torch.equal(kept.h_s[-1].weight, base.h_s[-1].weight) and torch.equal(kept.g_s[0].weight, base.g_s[0].weight)
    good = retrain(RetrainConfig("decoder", steps=20, batch_size=4, lr=1e-3, validation=0.25, validate_every=5),
                   tcq_ckpt, tcq_dataset, tmp_path / "d.ckpt", progress=False)["validation"]
    assert good["best_step"] > 0 and good["best_loss"] < good["history"][0][1]  # training that helps is kept


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0].state_dict()


def test_lookahead_searches_the_next_batch_under_the_previous_weights(tcq_dataset: Path, tcq_ckpt: Path,
                                                                     tmp_path: Path) -> None:
    """With every step a checkpoint boundary the lookahead never looks ahead: its run is online's, bit
    for bit. With lookahead, the run differs (its indices are one step stale), still moves ``h_s``, and
    a run resumed from a checkpoint ends on the weights of an uninterrupted one."""
    base = dict(mode="hyper-decoder", steps=6, batch_size=4, lmbda=0.01, strategy="online")
    online = retrain(RetrainConfig(**base, checkpoint_every=1), tcq_ckpt, tcq_dataset, tmp_path / "a.ckpt",
                     progress=False)
    never = retrain(RetrainConfig(**base, checkpoint_every=1, lookahead=True), tcq_ckpt, tcq_dataset,
                    tmp_path / "b.ckpt", progress=False)
    assert never["loss"] == online["loss"]
    assert all(torch.equal(t, _weights(tmp_path / "b.ckpt")[k]) for k, t in _weights(tmp_path / "a.ckpt").items())
    ahead = retrain(RetrainConfig(**base, checkpoint_every=3, lookahead=True), tcq_ckpt, tcq_dataset,
                    tmp_path / "c.ckpt", progress=False)
    assert ahead["config"]["lookahead"] and ahead["loss"] != online["loss"]
    start, moved = _weights(tcq_ckpt), _weights(tmp_path / "c.ckpt")
    assert any(not torch.equal(start[k], moved[k]) for k in start if k.startswith("h_s."))

    def stop(step: int, _: dict) -> None:
        if step == 4:  # the search of step 5's batch is under way
            raise KeyboardInterrupt

    cfg = RetrainConfig(**base, checkpoint_every=3, lookahead=True)
    with pytest.raises(KeyboardInterrupt):
        retrain(cfg, tcq_ckpt, tcq_dataset, tmp_path / "d.ckpt", progress=False, on_log=stop, log_every=1)
    assert read_checkpoint(tmp_path / "d.ckpt")["retrain_state"]["step"] == 3
    resumed = retrain(cfg, tcq_ckpt, tcq_dataset, tmp_path / "d.ckpt", progress=False, resume=True)
    assert resumed["loss"] == ahead["loss"] and resumed["resumed_at"] == [3]
    assert all(torch.equal(t, _weights(tmp_path / "d.ckpt")[k]) for k, t in moved.items())
    checked = retrain(RetrainConfig(**base, lookahead=True, validation=0.25, validate_every=2), tcq_ckpt,
                      tcq_dataset, tmp_path / "f.ckpt", progress=False)  # validations between searches ahead
    assert [s for s, _ in checked["validation"]["history"]] == [0, 2, 4, 6]


@pytest.mark.parametrize("kind", ["mbt2018", "channel-context"])
def test_lookahead_refuses_a_context_model(kind: str) -> None:
    """A context model's ``means`` depend on the latents decoded before: no search ahead of them."""
    from lic.config import KINDS
    from lic.errors import LicError
    from lic.lookahead import Lookahead
    from lic.models import build_model

    model = build_model(ModelConfig(architecture=KINDS[kind], N=TINY.N, M=TINY.M, quantizer="tcq",
                                    **({"slices": 2} if kind == "channel-context" else {})))
    with pytest.raises(LicError, match="lookahead needs means and scales from z_hat alone"):
        Lookahead(model, model.quantizer)
