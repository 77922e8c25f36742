"""GPU claims of the task runners, on CPU: which worker owns which device, and which workers take
the steps that claim one (real process pools and Dask clusters; no CUDA needed to route)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.pipeline import DEVICE, check, claims_gpu
from flows.runners import RunnerConfig, pin, task_runner
from lic.errors import LicError
from lic.profiles import resolve

ROOT = Path(__file__).resolve().parents[1]


@task(cache_policy=NO_CACHE)
def where(devices: tuple[str, ...], hold: float = 0.0) -> tuple[str, str | None, str | None]:
    """(worker, pinned device, what CUDA would see), after holding the worker ``hold`` seconds."""
    time.sleep(hold)
    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except ValueError:
        worker = str(os.getpid())
    return worker, pin(devices), os.environ.get("CUDA_VISIBLE_DEVICES")


def _run(cfg: RunnerConfig, claimed: int, free: int = 0, hold: float = 1.0) -> tuple[list, list]:
    @flow(task_runner=task_runner(cfg))
    def probe() -> tuple[list, list]:
        with cfg.claim(True):
            gpu = [where.submit(cfg.devices(), hold) for _ in range(claimed)]
        with cfg.claim(False):
            cpu = [where.submit((), hold) for _ in range(free)]
        return [f.result(timeout=300) for f in gpu], [f.result(timeout=300) for f in cpu]

    return probe()


def test_process_pool_workers_own_the_devices_in_turn(prefect_api: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # not the pools of tests running beside it
    slots = lambda: set(Path(tempfile.gettempdir()).glob("lic-workers-*"))  # noqa: E731
    before = slots()
    gpu, _ = _run(RunnerConfig(kind="processes", workers=2, gpus=("3", "5")), claimed=2, hold=3.0)
    assert slots() == before  # the pool's lock files went with it
    assert {device for _, device, _ in gpu} == {"3", "5"}  # two workers, one device each
    assert all(seen == device for _, device, seen in gpu)  # set before the step's CUDA starts
    assert len({worker for worker, _, _ in gpu}) == 2


def test_local_dask_workers_declare_a_gpu_and_own_their_device(prefect_api: str) -> None:
    gpu, _ = _run(RunnerConfig(kind="dask", workers=2, gpus=("0", "1")), claimed=4)
    assert all(device == ("0", "1")[int(worker)] for worker, device, _ in gpu)  # a claimed step ran: a GPU is declared


def test_claimed_steps_go_only_to_workers_with_a_gpu(prefect_api: str) -> None:
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {name: {"cls": Nanny, "options": {"nthreads": 1, **options}}
               for name, options in (("gpu", {"resources": {"GPU": 1}}), ("cpu", {}))}
    with SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": None}}) as cluster:
        gpu, cpu = _run(RunnerConfig(kind="dask", address=cluster.scheduler_address), claimed=4, free=4, hold=0.5)
    assert {worker for worker, _, _ in gpu} == {"gpu"}  # unclaimed, these four would spread over both
    assert {worker for worker, _, _ in cpu} <= {"gpu", "cpu"}
    assert all(device is None for _, device, _ in gpu)  # a user's cluster pins its own devices


def test_which_steps_claim_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = resolve("gpu", ROOT / "profiles")
    demo = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert [name for name in (*DEVICE, "evaluate", "zoo") if claims_gpu(name, gpu)] == list(DEVICE)
    assert not any(claims_gpu(name, demo) for name in (*DEVICE, "evaluate", "zoo"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(LicError, match="no CUDA device"):
        check(gpu)
    assert check(gpu | {"runner": {"kind": "dask", "address": "tcp://gpu-host:8786"}}).devices() == ()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert check(gpu).devices() == ("2", "3")
