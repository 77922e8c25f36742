"""Which Prefect task runner a flow runs its independent tasks on: ``params.yaml``'s ``runner``.

- ``threads``: Prefect's thread pool, in the flow's process;
- ``processes``: Prefect's process pool, one process per worker (the default; concurrent training
  needs it, as threads share torch's random number generator);
- ``dask``: ``prefect_dask.DaskTaskRunner``, on a ``distributed.LocalCluster`` of ``workers``
  single-threaded processes, or on the scheduler at ``address`` (a cluster you run).

GPU work claims a GPU. Local worker ``w`` (process-pool worker or ``LocalCluster`` worker) owns
device ``gpus[w % len(gpus)]``: a step that claims a GPU makes it the only one CUDA sees there
(``CUDA_VISIBLE_DEVICES``), so ``workers`` = k x ``len(gpus)`` runs k steps per GPU. On Dask the
claim is also a resource, ``dask.annotate(resources={"GPU": 1})``: local workers declare one
``GPU`` each, and on your own cluster only the workers you start with ``--resources GPU=1`` take
GPU steps (pin their devices yourself, one worker per GPU, as ``dask-cuda`` does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from prefect import Flow
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from flows.common import load_params
from lic.errors import LicError

KINDS = ("threads", "processes", "dask")


@dataclass(frozen=True)
class RunnerConfig:
    kind: str = "processes"
    workers: int = 2
    address: str | None = None  # dask only: tcp://host:8786; none starts a LocalCluster
    # CUDA devices the local workers share; None: those CUDA_VISIBLE_DEVICES lists, else every one torch sees
    gpus: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LicError(f"unknown runner kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.workers < 1:
            raise LicError(f"runner.workers must be at least 1, got {self.workers}")
        if self.address and self.kind != "dask":
            raise LicError("runner.address is for the dask runner")
        if self.gpus is not None:
            object.__setattr__(self, "gpus", tuple(str(g) for g in self.gpus))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "RunnerConfig":
        return cls(**(params.get("runner") or {}))

    @property
    def torch_threads(self) -> int:
        """Threads per task on this machine: the cores shared by the workers (a remote cluster's
        workers are sized by whoever runs it; this applies to local ones)."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def devices(self) -> tuple[str, ...]:
        """The CUDA devices local workers are pinned to (none on a remote cluster: its workers own theirs)."""
        if self.address:
            return ()
        if self.gpus is not None:
            return self.gpus
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return tuple(d.strip() for d in visible.split(",") if d.strip())
        import torch

        return tuple(map(str, range(torch.cuda.device_count())))

    def claim(self, gpu: bool) -> ContextManager[Any]:
        """Around a task's ``submit``: on Dask, a GPU step goes to a worker with a free ``GPU``."""
        if not gpu or self.kind != "dask":
            return contextlib.nullcontext()
        import dask

        return dask.annotate(resources={"GPU": 1})


_worker: int | None = None  # this process's number in a process pool (see _number)
_slot: Any = None  # the open lock file that holds it, for the life of the process


def _number(folder: str, workers: int) -> None:
    """A process-pool worker's initializer: take the lowest free number, an exclusive lock on
    ``folder/<n>`` that the operating system releases when the process ends."""
    import fcntl

    global _worker, _slot
    Path(folder).mkdir(exist_ok=True)
    for n in range(workers):
        f = open(Path(folder) / str(n), "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _worker, _slot = n, f
        return


def worker_number() -> int | None:
    """This worker's number: a process-pool worker's own, or a ``LocalCluster`` worker's name."""
    if _worker is not None:
        return _worker
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):  # not on a Dask worker
        return None
    return int(name) if name.isdigit() else None


def pin(devices: tuple[str, ...]) -> str | None:
    """Make this worker's device the only one CUDA sees, before CUDA starts in this process."""
    w = worker_number()
    if not devices or w is None:
        return None
    os.environ["CUDA_VISIBLE_DEVICES"] = device = devices[w % len(devices)]
    return device


class NumberedProcessPool(ProcessPoolTaskRunner):
    """Prefect's process pool, its workers numbered by :func:`_number` from a folder of lock files
    that lives as long as the pool: through the pool's public ``initializer`` and ``initargs``, and a
    ``duplicate`` (what Prefect enters for each flow run) with a folder of its own."""

    def __init__(self, max_workers: int) -> None:
        self.workers = max_workers
        self.slots = Path(tempfile.gettempdir()) / f"lic-workers-{uuid.uuid4().hex}"  # made by the first worker
        super().__init__(max_workers=max_workers, initializer=_number, initargs=(str(self.slots), max_workers))

    def duplicate(self) -> "NumberedProcessPool":
        twin = type(self)(self.workers)
        twin.subprocess_message_processor_factories = self.subprocess_message_processor_factories
        return twin

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            shutil.rmtree(self.slots, ignore_errors=True)


def task_runner(cfg: RunnerConfig) -> TaskRunner:
    """The Prefect task runner ``cfg`` names."""
    if cfg.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    if cfg.kind == "processes":
        return NumberedProcessPool(cfg.workers)
    from prefect_dask import DaskTaskRunner

    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    gpu = {"resources": {"GPU": 1}} if cfg.devices() else {}
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None, **gpu})


def with_runner(flow: Flow) -> Flow:
    """``flow`` on the task runner ``params.yaml`` names (made when the flow starts)."""
    return flow.with_options(task_runner=task_runner(RunnerConfig.from_params(load_params())))
