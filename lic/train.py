"""Phase 1: end-to-end training of the hyperprior with a quantization surrogate.

Loss (CompressAI's convention): ``L = lmbda * 255^2 * MSE(x, x_hat) + bpp``, where
``bpp = -sum(log2 likelihoods) / (B * H * W)`` over ``y`` and ``z``. The entropy bottleneck's
quantiles have their own optimizer on ``aux_loss``.

Training checkpoints every ``checkpoint_every`` steps into the output file itself (weights,
entropy-coder tables, optimizer and RNG states), so ``resume=True`` continues a killed run and,
with the same seed, ends on the same weights as an uninterrupted one. Under ``torchrun`` the model
is trained data-parallel (:mod:`lic.distributed`): rank ``r`` draws its noise from seed
``seed + r * 1000003`` and its patches from that plus 1, only rank 0 writes the checkpoint (with every rank's RNG state), and
every rank resumes from it.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from lic import distributed
from lic.models import build_model
from lic.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lic.config import ModelConfig, TrainConfig
from lic.data import PatchSampler
from lic.errors import LicError
from lic.models import Hyperprior

LogFn = Callable[[int, dict[str, float]], None]
# Changing these between a run and its resumption would silently change the experiment.
_RESUME_KEYS = ("lmbda", "batch_size", "patch_size", "min_scale", "lr", "lr_drops", "aux_lr", "clip_max_norm", "seed")


def rate_distortion(out: dict[str, Any], x: torch.Tensor, lmbda: float | None) -> dict[str, torch.Tensor]:
    """``loss = lmbda * 255^2 * mse + bpp``, with ``bpp``, ``mse`` and ``psnr`` alongside.

    ``bpp = -sum(log2 likelihoods) / (B * H * W)``; ``lmbda=None`` computes no loss (for callers
    that train on the distortion alone).
    """
    num_pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = sum(-torch.log2(l).sum() for l in out["likelihoods"].values()) / num_pixels
    mse = torch.mean((out["x_hat"] - x) ** 2)
    rd = {"bpp": bpp, "mse": mse, "psnr": -10 * torch.log10(mse.detach())}
    return rd if lmbda is None else {"loss": lmbda * 255**2 * mse + bpp, **rd}


def make_optimizers(model: Hyperprior, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam on the network weights, and Adam on the entropy bottleneck's quantiles."""
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return torch.optim.Adam(main, lr=cfg.lr), torch.optim.Adam(aux, lr=cfg.aux_lr)


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    images: Path,
    out: Path,
    resume: bool = False,
    on_log: LogFn | None = None,
    log_every: int = 50,
    progress: bool = True,
    init: Path | None = None,
) -> dict[str, float]:
    """Train for ``cfg.steps`` steps on patches of ``images``; the checkpoint is ``out``.

    ``init`` starts from another checkpoint's weights (same architecture), e.g. fine-tuning a
    new lambda from one base model. Returns the last metrics (``loss``, ``bpp``, ``mse``, ``psnr``,
    ``step``).
    """
    out = Path(out)
    if torch.device(cfg.device).type == "cuda" and not torch.cuda.is_available():
        raise LicError("device 'cuda' asked for, but CUDA is not available here")
    world = distributed.start(cfg.device)
    device = world.device(cfg.device)
    sampler = PatchSampler.from_folder(images, cfg.patch_size, cfg.batch_size, cfg.min_scale)
    torch.manual_seed(cfg.seed + world.rank * 1_000_003)  # each rank its own noise; DDP copies rank 0's init
    generator = torch.Generator().manual_seed(cfg.seed + 1 + world.rank * 1_000_003)
    model = build_model(model_cfg).to(device).train()
    optimizer, aux_optimizer = make_optimizers(model, cfg)
    step, resumed_at = 0, []
    if out.exists():
        if not resume:
            raise LicError(f"{out} exists; pass --resume to continue it, or choose another output")
        step, resumed_at = _resume(out, model, optimizer, aux_optimizer, generator, model_cfg, cfg, device, world)
    elif init is not None:
        base, _ = load_checkpoint(init, device)
        if (base.config.N, base.config.M) != (model_cfg.N, model_cfg.M):
            raise LicError(f"{init} has N={base.config.N}, M={base.config.M}; this run wants N={model_cfg.N}, M={model_cfg.M}")
        try:  # a context model may start from a hyperprior: its context transforms start at zero
            weights = {k: v for k, v in base.state_dict().items() if not k.startswith("fitted_tables.")}  # refit after
            missing, unexpected = model.load_state_dict(weights, strict=False)
        except RuntimeError:
            missing, unexpected = ["?"], []
        if unexpected or any(not k.startswith("cc.") for k in missing):
            raise LicError(f"{init} is a {base.config.architecture} with slices={base.config.slices}; it cannot "
                           f"start a {model_cfg.architecture} with slices={model_cfg.slices}")
    quantiles = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
    net = distributed.wrap(model, world, ignore=quantiles)  # the quantiles: aux optimizer, averaged below

    def checkpoint() -> None:
        model.update(force=True)
        rngs = distributed.gather(_rng_state(generator, device), world)
        weights = distributed.check_in_step(model, world, f" at step {step}")
        if world.main:
            state = {
                "step": step,
                "train_config": asdict(cfg),
                "init": str(init) if init else None,
                "optimizer": optimizer.state_dict(),
                "aux_optimizer": aux_optimizer.state_dict(),
                "rng": rngs[0],
                "world_size": world.size,
                "resumed_at": resumed_at,
                **({"rng_ranks": rngs, "rank_weights": weights} if world.size > 1 else {}),
            }
            save_checkpoint(out, model, state)
        distributed.barrier(world)

    metrics: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train λ={cfg.lmbda:g}", disable=not progress or not world.main,
               dynamic_ncols=True)
    try:
        while step < cfg.steps:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(step)
            x = sampler.sample(generator).to(device)
            optimizer.zero_grad(set_to_none=True)
            aux_optimizer.zero_grad(set_to_none=True)
            rd = rate_distortion(net(x), x, cfg.lmbda)
            rd["loss"].backward()
            if cfg.clip_max_norm > 0:
                torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], cfg.clip_max_norm)
            optimizer.step()
            aux_loss = model.aux_loss()
            aux_loss.backward()
            distributed.average_grads(aux_optimizer.param_groups[0]["params"], world)
            aux_optimizer.step()
            step += 1
            if not math.isfinite(float(rd["loss"].detach())):
                raise LicError(f"training diverged at step {step} (loss is {float(rd['loss'])}); lower the learning rate")
            metrics = {k: float(v.detach()) for k, v in rd.items()} | {"step": step}
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", bpp=f"{metrics['bpp']:.3f}", psnr=f"{metrics['psnr']:.2f}")
            if on_log and (step % log_every == 0 or step == cfg.steps):
                on_log(step, metrics)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
    except KeyboardInterrupt:
        if world.size == 1:  # under torchrun every rank is stopped: the last checkpoint stands
            checkpoint()
        raise
    finally:
        bar.close()
    return metrics


def _resume(
    out: Path,
    model: Hyperprior,
    optimizer: torch.optim.Optimizer,
    aux_optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    device: torch.device,
    world: distributed.World,
) -> tuple[int, list[int]]:
    """Restore weights, optimizers and RNG streams (this rank's) from ``out``; returns the step reached,
    and the steps the run was resumed at, this one included."""
    obj = read_checkpoint(out)
    state = obj.get("train_state")
    if state is None:
        raise LicError(f"{out} holds no training state to resume from")
    if obj["config"] != model_cfg.to_dict():
        raise LicError(f"{out} was trained with model {obj['config']}, not {model_cfg.to_dict()}")
    saved = {"min_scale": 1.0, **state["train_config"]}  # checkpoints from before min_scale
    changed = [k for k in _RESUME_KEYS if _norm(saved[k]) != _norm(getattr(cfg, k))]
    if changed:
        raise LicError(f"cannot resume {out}: {', '.join(f'{k} was {saved[k]}' for k in changed)}")
    loaded, _ = load_checkpoint(out, device)
    model.load_state_dict(loaded.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    aux_optimizer.load_state_dict(state["aux_optimizer"])
    distributed.check_resumable(state.get("world_size", 1), world)
    _set_rng_state(state["rng_ranks"][world.rank] if world.size > 1 else state["rng"], generator, device)
    step = int(state["step"])
    return step, list(state.get("resumed_at", [])) + ([step] if step < cfg.steps else [])


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value
