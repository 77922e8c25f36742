"""The whole method as one parent flow, for users who run Prefect without DVC.

The bundled data; then, for each seed of ``params.yaml``: pretrain (the shared base, then USQ and
TCQ at every lambda; the zoo profile imports the USQ bases and fine-tunes TCQ from them), make
latent datasets, retrain (each mode of :func:`lic.config.retrain_modes`) and evaluate every family;
then the Pillow anchors and the report. Each step is the same subflow a DVC stage runs. DVC adds
what Prefect alone does not: skipping steps whose inputs did not change.
"""

from __future__ import annotations

from prefect import flow

from flows.common import load_params, main, variants
from flows.data import data
from flows.evaluate import evaluate
from flows.make_latents import make_latents
from flows.runners import with_runner
from flows.pretrain import pretrain
from flows.report import report
from flows.retrain import retrain
from flows.zoo import zoo_import
from lic.config import EvaluateConfig, retrain_modes


@flow(name="pipeline")
def pipeline() -> str:
    p = load_params()
    data()
    for seed in map(str, p.get("seeds", [0])):
        if "zoo" not in p:
            pretrain("usq", "base", seed)
        for q in p["quantizers"]:
            for key in p["lmbdas"]:
                if "zoo" in p and q == "usq":
                    zoo_import(key)
                else:
                    pretrain(q, key, seed)
                with_runner(make_latents)(q, key, seed)
                for mode in retrain_modes(q):
                    retrain(mode, q, key, seed)
        for q in p["quantizers"]:
            for kind in variants(q):
                evaluate(f"{q}-{kind}", seed)
    for codec in EvaluateConfig(**p["evaluate"]).codecs:
        evaluate(codec)
    return report()


if __name__ == "__main__":
    main(pipeline)
