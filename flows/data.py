"""Data flow: one data set of the registry into ``artifacts/data/<name>`` (``lic data get``): the bundled
photos' splits, or a standard set downloaded (resumably, checksums checked; ``LIC_DATA_MIRROR``
serves the same files from a mirror). A folder that already holds the set is kept, so the stage's
output (persistent in ``dvc.yaml``) is downloaded once; a folder holding anything else is refused."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.common import image_folder, main
from lic.download import get
from lic.sources import registry
from lic.errors import LicError


def check(name: str) -> None:
    if name not in registry():
        raise LicError(f"unknown data set {name!r}; choose one of {', '.join(registry())}")


@flow(name="data")
def data(name: str) -> str:
    out = image_folder(name)
    count = get(name, out, progress=False)
    get_run_logger().info("%s: %d images (%s)", out, count, registry()[name].source)
    return str(out)


if __name__ == "__main__":
    main(data, check)
