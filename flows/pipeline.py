"""The whole method as one parent flow, for users who run Prefect without DVC.

Its steps are the stages of ``dvc.yaml``, from the one list that writes it (:func:`flows.stages.runs`):
the data sets; for each seed, pretraining (the shared base, then USQ and TCQ at every lambda; the zoo
profile imports the USQ bases and fine-tunes TCQ from them), the latent datasets, each family's
retraining and every evaluation; the Pillow anchors; the report. Each step is the same subflow its
DVC stage runs, submitted as a task to the runner ``params.yaml`` names (``runner``) once the steps
whose outputs it reads are done (as DVC's graph joins them), up to ``runner.workers`` at once, so
the fine-tunes, the latent datasets, the retraining runs and the evaluations of different lambdas
and quantizers overlap. A step whose section of ``params.yaml`` sets ``device: cuda`` claims a GPU
(see :mod:`flows.runners`). A failed step fails the flow once every other step has ended. DVC adds
what Prefect alone does not: skipping steps whose inputs did not change.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import UnfinishedRun
from prefect.futures import PrefectFuture, wait

from flows.common import load_params, main
from flows.data import data
from flows.evaluate import evaluate
from flows.make_latents import make_latents
from flows.pretrain import pretrain
from flows.report import report
from flows.retrain import retrain
from flows.runners import RunnerConfig, pin, with_runner
from flows.stages import runs, upstream
from flows.zoo import zoo_import
from lic.config import QUANTIZER_CLASSES
from lic.errors import LicError
from lic.quantizers import quantizer_class

STEPS: dict[str, Callable[..., Any]] = {"pretrain": pretrain, "make_latents": make_latents, "retrain": retrain,
                                        "evaluate": evaluate, "zoo": zoo_import}  # each stage's flow
DEVICE = {"pretrain": ("pretrain", "recipe"), "make_latents": ("latents",), "retrain": ("retrain",)}  # its section


def claims_gpu(name: str, params: dict[str, Any]) -> bool:
    """Whether step ``name`` runs on CUDA: its section of ``params.yaml`` says ``device: cuda``."""
    section: dict[str, Any] = params
    for key in DEVICE.get(name, ()):
        section = section.get(key) or {}
    return name in DEVICE and str(section.get("device", "cpu")).startswith("cuda")


@task(cache_policy=NO_CACHE, task_run_name="{name} {args}")
def step(name: str, args: tuple[str, ...], threads: int, devices: tuple[str, ...] = ()) -> str:
    """One step of the pipeline (a subflow), with ``threads`` torch threads, on this worker's device
    of ``devices`` (none: every device the worker sees)."""
    torch.set_num_threads(threads)
    for q in QUANTIZER_CLASSES:  # their searches share the cores as torch does
        quantizer_class(q).threads(threads)
    pin(devices)
    return STEPS[name](*args)


def check(params: dict[str, Any] | None = None) -> RunnerConfig:
    """The runner of ``params.yaml``, if it can train concurrently, with devices for its CUDA steps."""
    p = params or load_params()
    runner = RunnerConfig.from_params(p)
    if runner.kind == "threads" and runner.workers > 1:  # training noise comes from torch's global RNG
        raise LicError("the pipeline trains models concurrently, and threads share torch's random number "
                       "generator: set runner.kind to processes or dask (or runner.workers to 1)")
    if not runner.address and any(claims_gpu(name, p) for name in DEVICE) and not runner.devices():
        raise LicError("params.yaml runs steps on cuda, and this machine shows no CUDA device "
                       "(CUDA_VISIBLE_DEVICES, runner.gpus)")
    return runner


@flow(name="pipeline")
def pipeline() -> str:
    """The stages of ``dvc.yaml`` (:func:`flows.stages.runs`, one definition for both), each submitted
    once the stages it reads from are done: the data sets first, the report last, in this process."""
    p = load_params()
    runner = check(p)
    threads, devices = runner.torch_threads, runner.devices()
    torchrun = int((p.get("distributed") or {}).get("nproc_per_node", 1)) > 1  # takes every device it sees
    plan = runs(p)
    after = upstream(plan)
    futures: dict[str, PrefectFuture] = {}
    for r in plan:
        if r.flow == "data":
            data(*r.args)
        elif r.flow != "report":
            gpu = claims_gpu(r.flow, p)
            pinned = devices if gpu and not (torchrun and r.flow == "pretrain") else ()
            with runner.claim(gpu):
                futures[r.name] = step.submit(r.flow, r.args, threads, pinned,
                                              wait_for=[futures[n] for n in after[r.name] if n in futures])
    wait(list(futures.values()))
    for f in futures.values():
        try:
            f.result()  # raises a failed step's own error
        except UnfinishedRun:
            continue  # never ran: a step it waited for failed, and raises below or above
    return report()


if __name__ == "__main__":
    main(with_runner(pipeline), check)
