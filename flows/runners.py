"""Which Prefect task runner a flow runs its independent tasks on: ``params.yaml``'s ``runner``.

- ``threads``: Prefect's thread pool, in the flow's process;
- ``processes``: Prefect's process pool, one process per worker (the default; concurrent training
  needs it, as threads share torch's random number generator);
- ``dask``: ``prefect_dask.DaskTaskRunner``, on a ``distributed.LocalCluster`` of ``workers``
  single-threaded processes, or on the scheduler at ``address`` (a cluster you run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LicError(f"unknown runner kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.workers < 1:
            raise LicError(f"runner.workers must be at least 1, got {self.workers}")
        if self.address and self.kind != "dask":
            raise LicError("runner.address is for the dask runner")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "RunnerConfig":
        return cls(**(params.get("runner") or {}))

    @property
    def torch_threads(self) -> int:
        """Threads per task on this machine: the cores shared by the workers (a remote cluster's
        workers are sized by whoever runs it; this applies to local ones)."""
        return max(1, (os.cpu_count() or 1) // self.workers)


def task_runner(cfg: RunnerConfig) -> TaskRunner:
    """The Prefect task runner ``cfg`` names."""
    if cfg.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    if cfg.kind == "processes":
        return ProcessPoolTaskRunner(max_workers=cfg.workers)
    from prefect_dask import DaskTaskRunner

    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def with_runner(flow: Flow) -> Flow:
    """``flow`` on the task runner ``params.yaml`` names (made when the flow starts)."""
    return flow.with_options(task_runner=task_runner(RunnerConfig.from_params(load_params())))
