"""Data flow: the bundled photos (real photographs shipped in pip packages) as PNG, train/ and test/."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.common import DATA, main
from lic.data import prepare_default_dataset, split_sizes


@flow(name="data")
def data() -> str:
    root = prepare_default_dataset(DATA)
    get_run_logger().info("%s: %d train and %d test images", root, *split_sizes())
    return str(root)


if __name__ == "__main__":
    main(data)
