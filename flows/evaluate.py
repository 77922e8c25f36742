"""Evaluation flow: real bitstreams of one model family over all lambdas, or a Pillow anchor."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import evaluation_table
from flows.common import (checkpoint, choose, coded_variants, evaluation, image_folder, load_params, main, quantizers,
                          seed_of, tcq_coding, variants)
from lic.config import EvaluateConfig, coding_of
from lic.data import list_images
from lic.errors import LicError
from lic.evaluate import evaluate_checkpoints, evaluate_codec


@task(cache_policy=NO_CACHE)  # writes an artifact: never skipped by input caching
def evaluate_variant(name: str, images: str, ckpts: list[str] | None, quantizer: str | None,
                     qparams: dict, qualities: list[int], seed: int = 0) -> str:
    files = list_images(Path(images))
    if ckpts is None:
        ev = evaluate_codec(name, files, qualities, progress=False)
    else:
        ev = evaluate_checkpoints([Path(c) for c in ckpts], files, quantizer, name=name, progress=False,
                                  quantizer_params=qparams)
    out = evaluation(name, seed)
    ev.write(out)
    evaluation_table(ev.to_json(), out)
    logger = get_run_logger()
    res = ev.to_json()["results"]
    for point, bpp, psnr in zip(ev.points(), res["bpp"], res["psnr-rgb"]):
        logger.info("%s %s: %.4f bpp, %.2f dB", name, point, bpp, psnr)
    for image, reason in ev.failed.items():
        logger.warning("skipped %s: %s", image, reason)
    return str(out)


def check(variant: str, seed: str = "0") -> None:
    """``variant`` names a ``<quantizer>-<variant>`` family or an anchor of ``params.yaml`` (anchors
    have no seed); ``seed`` one of its ``seeds``."""
    p = load_params()
    codecs = EvaluateConfig(**p["evaluate"]).codecs
    choose(variant, [f"{q}-{v}" for q in quantizers(p) for v in (*variants(q, p), *coded_variants(q, p))] + list(codecs),
           "model family or codec")
    if seed_of(p, seed) and variant in codecs:
        raise LicError(f"{variant} is a classical anchor: it has no seed")


@flow(name="evaluate")
def evaluate(variant: str, seed: str = "0") -> str:
    """``variant`` is ``<quantizer>-<variant>`` (e.g. ``usq-base``, ``tcq-decoder``, or a base coded
    with another quantizer, ``tcq-base-as-usq``) or a codec."""
    p = load_params()
    s = seed_of(p, seed)
    images = str(image_folder(p["data"]["test_images"]))
    cfg = EvaluateConfig(**p["evaluate"])
    if variant in cfg.codecs:
        return evaluate_variant(variant, images, None, None, {}, list(cfg.qualities))
    quantizer, kind = variant.split("-", 1)
    coding = quantizer
    if coding_of(variant):
        kind, coding = "base", coding_of(variant)[1]
    ckpts = [str(checkpoint(quantizer, kind, key, s)) for key in p["lmbdas"]]
    return evaluate_variant(variant, images, ckpts, coding, tcq_coding(p, coding), [], s)


if __name__ == "__main__":
    main(evaluate, check)
