"""Data flow: the bundled photos (real photographs shipped in pip packages) as PNG, train/ and test/."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.common import DATA, main
from lic.data import DEFAULT_SOURCES, prepare_default_dataset


@flow(name="data")
def data() -> str:
    root = prepare_default_dataset(DATA)
    n_test = sum(s[3] == "test" for s in DEFAULT_SOURCES)
    get_run_logger().info("%s: %d train and %d test images", root, len(DEFAULT_SOURCES) - n_test, n_test)
    return str(root)


if __name__ == "__main__":
    main(data)
