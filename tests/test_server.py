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


def test_the_ui_of_a_server_on_another_port_shows_its_own_runs(tmp_path: Path) -> None:
    """Another pipeline's Prefect server holds the port; this run's server takes a free one, and its UI,
    opened in headless Chromium at the printed address, shows this run's flow run, not the other's."""
    import shutil
    import time
    import urllib.request

    import pytest

    if shutil.which("chromium") is None:
        pytest.skip("needs Chromium (apt-get install chromium; .ci/run installs it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()[1]
    other_env = dict(env, PREFECT_HOME=str(tmp_path / "other"), PREFECT_SERVER_API_PORT=str(taken))
    other = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                              str(taken)], env=other_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(180):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{taken}/api/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        probe = [sys.executable, str(ROOT / "tests" / "ui_probe.py")]
        subprocess.run(probe + ["the-other-pipelines-run", "/runs", str(tmp_path / "other-ui")], check=True, timeout=600,
                       env=dict(other_env, PREFECT_API_URL=f"http://127.0.0.1:{taken}/api"), capture_output=True)
        run = subprocess.run([sys.executable, "-m", "flows.server", *probe, "this-pipelines-run", "/runs",
                              str(tmp_path / "ui")], cwd=tmp_path, timeout=600, capture_output=True, text=True,
                             env=dict(env, LIC_PREFECT_PORT=str(taken), PREFECT_HOME=str(tmp_path / "ours")))
    finally:
        other.terminate()
        other.wait(timeout=30)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"port {taken} is taken" in run.stderr
    dom = (tmp_path / "ui.html").read_text()
    assert "this-pipelines-run" in dom and "the-other-pipelines-run" not in dom
    assert "the-other-pipelines-run" in (tmp_path / "other-ui.html").read_text()  # the check can fail
