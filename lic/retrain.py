"""Phases 3 and 4: retraining on truly quantized latents, and the control run.

- ``decoder`` (phase 3): only ``g_s`` learns, on the dataset's ``(y_hat, x)`` pairs;
  loss ``MSE(g_s(y_hat), x)``. Encoder and hyper networks stay bit-identical.
- ``hyper-decoder`` (phase 4): ``h_s`` and ``g_s`` learn with rate plus distortion. ``y`` and
  ``z_hat`` are fixed; at every step ``means, scales = h_s(z_hat)``, ``y_hat = means + level(k)``
  and ``L = lmbda * 255^2 * MSE(g_s(y_hat), x) + bpp(k | scales)``, so gradients reach ``h_s``
  through ``means`` and ``scales``. The indices ``k`` per ``strategy``: ``online`` quantizes the
  batch again with the real quantizer under the current ``means`` and ``scales`` (USQ
  ``round(y - means)``, TCQ's Viterbi search), its rate's gradient in ``means`` that of the training
  surrogate (:meth:`lic.quantizers.Quantizer.requantize`), its search optionally one step ahead
  on a worker thread (``lookahead``, :mod:`lic.lookahead`); ``stale`` keeps the dataset's indices (the
  paper's dilemma for TCQ, kept as the reference). An ``online`` TCQ search weighted by the
  decoder holds ``g_s``'s sensitivity for ``weighting_every`` steps (:class:`Snapshot`). A
  channel-context model retrains its slice transforms with ``h_s``, slice by slice
  (:meth:`lic.models.channel_context.ChannelContext.requantize`).
- ``control``: ``g_s`` learns for the same steps on noise-approximated latents (the quantizer's
  training perturbation of ``y``), to separate the gain of true quantization from that of more
  training: phase 3's control.
- ``hyper-control``: phase 4's control. The parameters phase 4 trains (``g_s`` and the entropy
  decoders: ``h_s``, a context model's parts) learn for the same steps with the same loss
  ``lmbda * 255^2 * MSE + bpp`` and learning rate, on the training surrogate in place of true
  quantization: ``y_tilde, likelihoods = surrogate(y, z_hat)``
  (:meth:`lic.models.CodingModel.surrogate`).

A spatial context model's stale phase 4 records how far the teacher-forced context (the dataset's
``y_hat``) lies from the new ``y_hat`` as retraining goes (``context_drift``: mean absolute
difference, every ``log_every`` steps).

The record (``out.json`` and the checkpoint's ``meta.retrain``) holds the run's ``round`` (one more
than its starting checkpoint's, when that was retrained too), its ``wall_s``, and its
``cumulative_wall_s``: this run, the dataset's generation when the dataset is a later round's, and
the starting checkpoint's own cumulative time.

With ``validation`` > 0, that fraction of the dataset's patches (the last ones) is held out of
training; every ``validate_every`` steps the loss on them is measured under real quantization
(``g_s``'s MSE on the dataset's ``y_hat``, for the control too; phase 4's loss with indices chosen
afresh, whatever the strategy) and the weights with the lowest one are kept (early stopping).

Under ``torchrun`` the learning networks train data-parallel (:mod:`lic.distributed`): rank ``r``
draws its batches from seed ``seed + r * 1000003``, and rank 0 writes the checkpoint (with every
rank's random streams, so each rank resumes its own).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from lic import distributed
from lic.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, training_lambda
from lic.config import HYPER_MODES, RetrainConfig
from lic.errors import LicError
from lic.fileio import atomic_write_bytes
from lic.latents import LatentDataset, generation_seconds, open_latents, staleness
from lic.lookahead import Lookahead
from lic.models import Hyperprior, Requantizer, Surrogate
from lic.quantizers import Quantizer, Sensitivity
from lic.train import rate_distortion

_KEYS = {"decoder": ("y_hat", "x"), "control": ("y", "means", "scales", "x"), "hyper-decoder": ("y", "z_hat", "x"),
         "hyper-control": ("y", "z_hat", "x"), "stale": ("indices", "z_hat", "x")}


def retrain(cfg: RetrainConfig, checkpoint: Path, latents: Path, out: Path,
            on_log: Callable[[int, dict[str, float]], None] | None = None, log_every: int = 50,
            progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Retrain ``checkpoint`` on dataset ``latents``; writes checkpoint ``out`` and ``out.json`` metrics.

    Every ``cfg.checkpoint_every`` steps ``out`` holds the run's state (weights, optimizer, random
    streams, decoder weighting, validation); ``resume`` continues it from there, and a resumed run
    ends on the weights of an uninterrupted one. A finished ``out`` is returned as it is.
    """
    t0 = time.perf_counter()
    world = distributed.start(cfg.device)
    device = world.device(cfg.device)
    model, obj = load_checkpoint(checkpoint, device)
    group = open_latents(latents)
    stale = staleness(group, model)
    if stale and not cfg.allow_stale:
        raise LicError(f"{latents} is stale for {checkpoint}: {'; '.join(stale)} (--allow-stale to use it anyway)")
    if stale:
        warnings.warn(f"using stale dataset {latents}: {'; '.join(stale)}", stacklevel=2)
    lmbda = cfg.lmbda if cfg.lmbda is not None else training_lambda(obj)  # recorded: later rounds start from it
    hyper = cfg.mode in HYPER_MODES
    if hyper and lmbda is None:
        raise LicError(f"{checkpoint} records no training lambda; pass --lmbda")
    inputs = {"config": asdict(cfg), "checkpoint": obj["fingerprint"], "dataset": _identity(group)}
    state, finished = _saved_state(Path(out), inputs, resume)
    if finished is not None:
        return finished
    if hyper:  # tables fitted under the entropy decoders it retrains are dropped: it searches, and its
        model.fitted_tables.clear()  # checkpoint codes, with the analytic ones (lic tables fit fits it again)
    q = model.quantizer_for(group.attrs["quantizer"], **group.attrs["quantizer_params"])
    q.sensitivity = weighting = Snapshot(model.decoder_sensitivity)
    stale_indices = cfg.mode == "hyper-decoder" and cfg.strategy == "stale"
    keys = _KEYS["stale" if stale_indices else cfg.mode]
    if stale_indices and model.teacher_forced:
        keys += ("y_hat",)  # a spatial context model's stale context: the dataset's y_hat
    checked = _KEYS["hyper-decoder" if hyper else "decoder"] if cfg.validation else ()
    data = LatentDataset(latents, tuple(dict.fromkeys(keys + checked)))  # read once for both
    held = Validation(data.select(checked), cfg, device) if cfg.validation else None
    data = data.select(keys)
    n_train = len(data) - (len(held) if held else 0)
    if n_train < 1:
        raise LicError(f"retrain.validation {cfg.validation} leaves no training patches of {len(data)}")
    model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    learn = [model.g_s] + (model.entropy_decoders() if hyper else [])
    params = [p for m in learn for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    torch.manual_seed(cfg.seed + world.rank * 1_000_003)
    gen = torch.Generator().manual_seed(cfg.seed + world.rank * 1_000_003)
    g_s = distributed.wrap(model.g_s, world)
    requantizer = distributed.wrap((Surrogate if cfg.mode == "hyper-control" else Requantizer)(model, q), world) \
        if hyper else None
    lookahead = Lookahead(model, q) if cfg.mode == "hyper-decoder" and cfg.strategy == "online" and cfg.lookahead \
        else None
    metrics: dict[str, float] = {}
    step, elapsed, resumed_at, drift = 0, 0.0, [], []
    if state is not None:
        model.load_state_dict(load_checkpoint(out, device)[0].state_dict())
        optimizer.load_state_dict(state["optimizer"])
        distributed.check_resumable(state["world_size"], world)
        rng = state["rng"][world.rank]
        torch.set_rng_state(rng["torch"])
        gen.set_state(rng["data"])
        weighting.value = state["weighting"]
        if held:
            held.history, held.best = state["validation"]["history"], state["validation"]["best"]
        step, elapsed, metrics, drift = state["step"], state["elapsed_s"], state["metrics"], state.get("drift", [])
        resumed_at = state["resumed_at"] + [step]
    elif held:
        held.check(0, model, lmbda, q, learn)  # step 0: the starting weights may stay best

    def save_state() -> None:
        rngs = distributed.gather({"torch": torch.get_rng_state(), "data": gen.get_state()}, world)
        distributed.check_in_step(model, world, f" at step {step}")
        if world.main:
            save_checkpoint(out, model, retrain_state={
                "inputs": inputs, "step": step, "optimizer": optimizer.state_dict(), "rng": rngs,
                "world_size": world.size, "weighting": weighting.value, "metrics": metrics,
                "validation": {"history": held.history, "best": held.best} if held else None,
                "elapsed_s": elapsed + time.perf_counter() - t0, "resumed_at": resumed_at, "drift": drift})
        distributed.barrier(world)

    def draw() -> list[torch.Tensor]:
        return [t.to(device) for t in data.batch(torch.randint(n_train, (cfg.batch_size,), generator=gen))]

    bar = tqdm(total=cfg.steps, initial=step, desc=f"retrain {cfg.mode}", disable=not progress or not world.main,
               dynamic_ncols=True)
    try:
        while step < cfg.steps:
            step += 1
            if (step - 1) % cfg.weighting_every == 0:
                weighting.refresh()
            batch, chosen = (lookahead and lookahead.take()) or (draw(), None)
            if lookahead and step < cfg.steps and step % cfg.checkpoint_every and step % cfg.weighting_every \
                    and not (held and step % cfg.validate_every == 0):
                lookahead.submit(draw())  # not across a checkpoint, a new weighting or a validation (lic.lookahead)
            optimizer.zero_grad(set_to_none=True)
            loss, metrics = _step(model, cfg.mode, batch, lmbda, g_s, requantizer, q, chosen)
            loss.backward()
            optimizer.step()
            metrics["step"] = step
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", psnr=f"{metrics['psnr']:.2f}")
            if held and (step % cfg.validate_every == 0 or step == cfg.steps):
                metrics["validation_loss"] = held.check(step, model, lmbda, q, learn)
            if step % log_every == 0 or step == cfg.steps:
                if "context_drift" in metrics:
                    drift.append([step, metrics["context_drift"]])
                if on_log:
                    on_log(step, metrics)
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_state()
    except KeyboardInterrupt:
        if world.size == 1 and metrics.get("step") == step and not (lookahead and lookahead.pending):
            save_state()  # the last step was whole (and no batch drawn ahead of it): keep it
        raise
    finally:
        bar.close()
        if lookahead:
            lookahead.close()
    model.eval()
    if held:
        held.restore_best(learn)
    before = (obj.get("meta") or {}).get("retrain") or {}
    wall = elapsed + time.perf_counter() - t0
    later = (group.attrs.get("lineage") or {}).get("round", 1) > 1
    record = {**metrics, "mode": cfg.mode, "quantizer": q.name, "dataset": str(latents), "base_checkpoint": str(checkpoint),
              "stale": stale, "config": asdict(cfg) | {"lmbda": lmbda}, "round": before.get("round", 0) + 1,
              "wall_s": wall, "cumulative_wall_s": wall + before.get("cumulative_wall_s", 0.0)
              + (generation_seconds(group) if later else 0.0), "resumed_at": resumed_at,
              **({"validation": held.summary()} if held else {}), **({"context_drift": drift} if drift else {})}
    distributed.check_in_step(model, world)
    if world.main:
        save_checkpoint(out, model, meta={"retrain": record | {"world_size": world.size}, "retrain_inputs": inputs})
        atomic_write_bytes(Path(out).with_suffix(".json"), (json.dumps(record, indent=2) + "\n").encode())
    distributed.barrier(world)
    return record


def _identity(group: Any) -> dict[str, Any]:
    """What names a latent dataset's contents: its provenance and when it was made."""
    keys = ("encoder_fingerprint", "quantizer", "quantizer_params", "images_fingerprint", "lineage", "patches",
            "patch_size", "seed", "created")
    return json.loads(json.dumps({k: group.attrs.get(k) for k in keys}))


def _saved_state(out: Path, inputs: dict[str, Any], resume: bool) -> tuple[dict | None, dict | None]:
    """``(state, record)``: ``out``'s retraining state to continue, or, when ``out`` is finished, its
    record (``(None, None)``: start afresh). Refuses an ``out`` made from other inputs, or any ``out``
    without ``resume``."""
    if not out.exists():
        return None, None
    if not resume:
        raise LicError(f"{out} exists; pass --resume to continue it, or choose another output")
    saved = read_checkpoint(out)
    meta = saved.get("meta") or {}
    state = saved.get("retrain_state")
    had = state["inputs"] if state is not None else meta.get("retrain_inputs")
    if had is None:
        raise LicError(f"{out} is not a resumable retraining; choose another output")
    inputs = json.loads(json.dumps(inputs))
    changed = [k for k in inputs if had.get(k) != inputs[k]]
    if changed:
        raise LicError(f"cannot resume {out}: it was retrained with another {' and '.join(changed)}")
    return (state, None) if state is not None else (None, meta["retrain"])


class Validation:
    """The held-out patches of a dataset, the loss on them under real quantization, and the best
    weights of the learning modules seen so far."""

    def __init__(self, data: LatentDataset, cfg: RetrainConfig, device: torch.device) -> None:
        n = math.ceil(cfg.validation * len(data))
        self.batch = [t.to(device) for t in data.batch(torch.arange(len(data) - n, len(data)))]
        self.mode, self.size, self.fraction = cfg.mode, cfg.batch_size, cfg.validation
        self.history: list[list[float]] = []
        self.best: tuple[float, int, list[dict[str, torch.Tensor]]] | None = None

    def __len__(self) -> int:
        return len(self.batch[0])

    @torch.no_grad()
    def loss(self, model: Hyperprior, lmbda: float | None, q: Quantizer) -> float:
        total = 0.0
        for lo in range(0, len(self), self.size):
            part = [t[lo : lo + self.size] for t in self.batch]
            mode = {"control": "decoder", "hyper-control": "hyper-decoder"}.get(self.mode, self.mode)  # real quantization
            loss, _ = _step(model, mode, part, lmbda, q=q)
            total += float(loss) * len(part[0])
        return total / len(self)

    def check(self, step: int, model: Hyperprior, lmbda: float | None, q: Quantizer,
              modules: list[torch.nn.Module]) -> float:
        """The validation loss now; keeps a copy of ``modules``' weights when it is the lowest yet."""
        value = self.loss(model, lmbda, q)
        self.history.append([step, value])
        if self.best is None or value < self.best[0]:
            self.best = (value, step, [{k: t.detach().clone() for k, t in m.state_dict().items()} for m in modules])
        return value

    def restore_best(self, modules: list[torch.nn.Module]) -> None:
        for m, state in zip(modules, self.best[2]):
            m.load_state_dict(state)

    def summary(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "patches": len(self), "best_step": self.best[1], "best_loss": self.best[0],
                "history": self.history}


class Snapshot:
    """A sensitivity computed when first asked for after :meth:`refresh`, then held."""

    def __init__(self, sensitivity: Sensitivity) -> None:
        self.sensitivity, self.value = sensitivity, None

    def refresh(self) -> None:
        self.value = None

    def __call__(self) -> torch.Tensor:
        if self.value is None:
            self.value = self.sensitivity()
        return self.value


def _step(model: Hyperprior, mode: str, batch: list[torch.Tensor], lmbda: float | None,
          g_s: torch.nn.Module | None = None, requantizer: torch.nn.Module | None = None,
          q: Quantizer | None = None, chosen: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch: ``MSE`` (decoder, control), or :func:`lic.train.rate_distortion`'s
    ``lmbda * 255^2 * MSE + bpp`` (hyper-decoder, hyper-control), with its metrics. ``g_s``,
    ``requantizer``: the model's ``g_s`` and :class:`~lic.models.Requantizer` (hyper-control:
    :class:`~lic.models.Surrogate`), or their data-parallel wrappers; ``q``:
    the dataset's quantizer (default the model's). A hyper-decoder batch is ``(y, z_hat, x)``
    (``online``) or ``(indices, z_hat, x)`` (``stale``), a spatial context model's stale one with its
    stored ``y_hat`` (the teacher-forced context; its distance to the new ``y_hat`` is the metric
    ``context_drift``). ``chosen``: an online batch's indices, searched ahead (:mod:`lic.lookahead`)."""
    g_s, q = g_s or model.g_s, q or model.quantizer
    drift = None
    if mode == "hyper-control":  # phase 4's control: the training surrogate in place of true quantization
        y, z_hat, x = batch
        y_tilde, likelihoods = requantizer(y, z_hat) if requantizer is not None else model.surrogate(y, z_hat, q)
        out = {"x_hat": g_s(y_tilde), "likelihoods": {"y": likelihoods}}
    elif mode == "hyper-decoder":
        latent, z_hat, x, *context = batch
        ahead = {} if chosen is None else {"chosen": chosen}
        y_hat, likelihoods = (requantizer(latent, z_hat, *context, **ahead) if requantizer is not None
                              else model.requantize(latent, z_hat, q, *context, **ahead))
        if context:
            drift = float((context[0] - y_hat.detach()).abs().mean())
        out = {"x_hat": g_s(y_hat), "likelihoods": {"y": likelihoods}}
    else:
        y_hat, x = batch if mode == "decoder" else (q.perturb(*batch[:3])[0], batch[3])
        out = {"x_hat": g_s(y_hat), "likelihoods": {}}
    rd = rate_distortion(out, x, lmbda)
    loss = rd["loss"] if mode in HYPER_MODES else rd["mse"]
    metrics = {"loss": float(loss.detach()), "mse": float(rd["mse"].detach()), "psnr": float(rd["psnr"])}
    if mode in HYPER_MODES:
        metrics["bpp_y"] = float(rd["bpp"].detach())
    if drift is not None:
        metrics["context_drift"] = drift
    return loss, metrics
