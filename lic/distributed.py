"""Data-parallel training under ``torchrun``: one process per device, gradients averaged by DDP.

``torchrun --nproc-per-node N -m lic train ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`start` then joins the process group (``nccl`` on CUDA, ``gloo`` on CPU) and gives each rank
its device (``cuda:LOCAL_RANK``). Each rank draws its own batch, so one step sees ``N x batch``
patches; with equal batches the averaged gradient is the gradient of the concatenated batch. Without
``torchrun`` every function here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lic.checkpoint import weights_fingerprint
from lic.errors import LicError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and prints."""
        return self.rank == 0

    def device(self, device: str) -> torch.device:
        """``device`` for this rank: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
        d = torch.device(device)
        if d.type == "cuda" and self.size > 1 and d.index is None:
            return torch.device("cuda", self.local_rank)
        return d


def start(device: str) -> World:
    """Join torchrun's process group once (if launched by torchrun with more than one process)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def wrap(module: torch.nn.Module, world: World, ignore: list[str] = ()) -> torch.nn.Module:
    """``module`` in DDP (gradients all-reduced in backward); the named parameters in ``ignore``
    are left out of DDP, for those with their own optimizer (the entropy bottleneck's quantiles)."""
    if world.size == 1:
        return module
    if ignore:  # DDP's documented hook for parameters it must not synchronise
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(ignore))
    on_cuda = next(module.parameters()).is_cuda
    # buffers (the entropy coder's tables) are rebuilt by every rank alike: synced once, not per step
    return DistributedDataParallel(module, device_ids=[world.local_rank] if on_cuda else None,
                                   forward_sync_buffers=False)


def average_grads(params: list[torch.nn.Parameter], world: World) -> None:
    """Average the gradients of parameters left out of DDP across the ranks."""
    if world.size == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world.size)


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` alone)."""
    if world.size == 1:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def check_in_step(model: torch.nn.Module, world: World, when: str = "") -> list[str]:
    """Every rank's weight fingerprint, refusing ranks whose weights differ (a data-parallel bug
    that would otherwise go unseen); ``[]`` in one process, which has nothing to compare."""
    if world.size == 1:
        return []
    prints = gather(weights_fingerprint(model.state_dict()), world)
    if len(set(prints)) > 1:
        raise LicError(f"data-parallel ranks diverged{when}: their weights differ")
    return prints


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def check_resumable(saved_world: int, world: World) -> None:
    if saved_world != world.size:
        raise LicError(f"the checkpoint was written by {saved_world} process(es); resume it with as many, "
                       f"not {world.size}")
