"""Run under ``python -m flows.server``: run a flow, then load the server's UI in headless Chromium and
print what the page shows (the DOM after its scripts ran), and optionally a screenshot.

    python tests/ui_probe.py FLOW_NAME PAGE OUT_PREFIX
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from prefect import flow


def chromium(args: list[str], url: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, removed when it exits."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--virtual-time-budget=30000", "--window-size=1400,1000"]
        return subprocess.run(base + args + [url], capture_output=True, text=True, timeout=180)


def main() -> None:
    name, page, out = sys.argv[1:4]

    @flow(name=name)
    def probe() -> int:
        return 1

    probe()
    ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
    print(f"UI {ui}")
    dom = chromium(["--dump-dom"], ui + page)
    with open(out + ".html", "w") as fh:
        fh.write(dom.stdout)
    chromium([f"--screenshot={out}.png"], ui + page)


if __name__ == "__main__":
    main()
