"""Zoo flow (the ``zoo`` profile's phase 1): import CompressAI's pretrained model for one lambda key
as that key's USQ base model. ``params.yaml``'s ``zoo`` section names the quality and the URL of
each key; the flow checks them against CompressAI's zoo and the key's lambda."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import checkpoint, choose, load_params, main
from lic.errors import LicError
from lic.zoo import import_zoo, zoo_source


def check(key: str) -> None:
    p = load_params()
    if "zoo" not in p:
        raise LicError("params.yaml has no zoo section; this flow belongs to the zoo profile (profiles/zoo.yaml)")
    choose(key, p["zoo"]["qualities"], "lambda key of the zoo")
    zoo, lmbda = p["zoo"], float(p["lmbdas"][key])
    src = zoo_source(int(zoo["qualities"][key]), zoo["architecture"])
    if lmbda != src["lmbda"]:
        raise LicError(f"params.yaml gives {key} the lambda {lmbda}, CompressAI's zoo trained quality "
                       f"{src['quality']} at {src['lmbda']}")


@task(cache_policy=NO_CACHE)  # writes an artifact: never skipped by input caching
def import_base(quality: int, architecture: str, out: str) -> str:
    source = import_zoo(quality, Path(out), architecture, progress=False)
    get_run_logger().info("%s: %s quality %d from %s (SHA-256 %s)", out, architecture, quality, source["url"],
                          source["sha256"])
    return out


@flow(name="zoo_import")
def zoo_import(key: str) -> str:
    zoo = load_params()["zoo"]
    return import_base(int(zoo["qualities"][key]), zoo["architecture"], str(checkpoint("usq", "base", key)))


if __name__ == "__main__":
    main(zoo_import, check)
