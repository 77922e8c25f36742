"""The whole method as one parent flow, for users who run Prefect without DVC.

The data sets the profile names; then, for each seed of ``params.yaml``: pretrain (the shared base, then USQ and
TCQ at every lambda; the zoo profile imports the USQ bases and fine-tunes TCQ from them), make
latent datasets, retrain (each family of :class:`lic.config.RetrainPlan`; a later round after the
previous one, on a dataset made from its models) and evaluate every family;
then the Pillow anchors and the report. Each step is the same subflow a DVC stage runs, submitted
as a task to the runner ``params.yaml`` names (``runner``): steps run as soon as the ones they read
from are done, up to ``runner.workers`` at once, so the fine-tunes, the latent datasets, the
retraining runs and the evaluations of different lambdas and quantizers overlap. A step whose
section of ``params.yaml`` sets ``device: cuda`` claims a GPU (see :mod:`flows.runners`). A failed step
fails the flow once every other step has ended. DVC adds what Prefect alone does not: skipping
steps whose inputs did not change.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import UnfinishedRun
from prefect.futures import PrefectFuture, wait

from flows.common import coded_variants, data_sets, load_params, main, quantizers, retrain_plan, variants
from flows.data import data
from flows.evaluate import evaluate
from flows.make_latents import make_latents
from flows.pretrain import pretrain
from flows.report import report
from flows.retrain import retrain
from flows.runners import RunnerConfig, pin, with_runner
from flows.zoo import zoo_import
from lic import trellis
from lic.config import EvaluateConfig
from lic.errors import LicError

STEPS: dict[str, Callable[..., Any]] = {"pretrain": pretrain, "make_latents": make_latents, "retrain": retrain,
                                        "evaluate": evaluate, "zoo": zoo_import}
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
    trellis.threads(threads)  # the TCQ search shares the cores as torch does
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
    p = load_params()
    runner = check(p)
    threads, devices = runner.torch_threads, runner.devices()
    torchrun = int((p.get("distributed") or {}).get("nproc_per_node", 1)) > 1  # takes every device it sees
    for name in data_sets(p):
        data(name)

    def run(name: str, *args: str, after: list[PrefectFuture] = ()) -> PrefectFuture:
        gpu = claims_gpu(name, p)
        pinned = devices if gpu and not (torchrun and name == "pretrain") else ()
        with runner.claim(gpu):
            return step.submit(name, args, threads, pinned, wait_for=list(after))

    futures: list[PrefectFuture] = [run("evaluate", codec) for codec in EvaluateConfig(**p["evaluate"]).codecs]
    for seed in map(str, p.get("seeds", [0])):
        base = [] if "zoo" in p else [run("pretrain", "usq", "base", seed)]
        # the zoo profile imports each lambda's USQ base, and fine-tunes TCQ from it
        imported = {key: run("zoo", key) for key in p["lmbdas"]} if "zoo" in p else {}
        for q in quantizers(p):
            family: dict[str, list[PrefectFuture]] = {kind: [] for kind in variants(q, p)}
            for key in p["lmbdas"]:
                start = [imported[key]] if imported else base
                model = imported[key] if imported and q == "usq" else run("pretrain", q, key, seed, after=start)
                dataset = run("make_latents", q, key, seed, after=[model])
                family["base"].append(model)
                for fam in retrain_plan(p).families(q):
                    after = [dataset] if fam.round == 1 else [family[fam.previous().name][-1]]
                    if fam.new_latents:
                        after = [run("make_latents", q, key, seed, fam.name, after=after)]
                        futures += after
                    family[fam.name].append(run("retrain", fam.name, q, key, seed, after=after))
            for kind, done in family.items():
                futures.append(run("evaluate", f"{q}-{kind}", seed, after=done))
            for kind in coded_variants(q, p):  # the base coded with the other quantizers of evaluate.coding
                futures.append(run("evaluate", f"{q}-{kind}", seed, after=family["base"]))
            futures += [f for done in family.values() for f in done]
        futures += base + list(imported.values())
    wait(futures)
    for f in futures:
        try:
            f.result()  # raises a failed step's own error
        except UnfinishedRun:
            continue  # never ran: a step it waited for failed, and raises below or above
    return report()


if __name__ == "__main__":
    main(with_runner(pipeline), check)
