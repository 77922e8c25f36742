"""flows/server.py: one Prefect server per pipeline run, even while another run's server holds the port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_taken_port_gives_the_run_a_server_of_its_own(tmp_path: Path) -> None:
    """With the port held (as by a paused pipeline's server), the command still gets a healthy
    server of its own on another port, not a fallback to a temporary server per flow."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(LIC_PREFECT_PORT=str(taken), PREFECT_HOME=str(tmp_path / "prefect"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
        probe = ("import os, urllib.request; url = os.environ['PREFECT_API_URL']; "
                 "print(url, urllib.request.urlopen(url + '/health', timeout=10).status)")
        run = subprocess.run([sys.executable, "-m", "flows.server", sys.executable, "-c", probe], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    url, status = run.stdout.split()
    assert status == "200"
    assert url.startswith("http://127.0.0.1:") and not url.startswith(f"http://127.0.0.1:{taken}/")
    assert f"port {taken} is taken" in run.stderr
