"""Run a command with every flow reporting to one Prefect server.

    python -m flows.server dvc repro

If ``PREFECT_API_URL`` is set (your own ``prefect server start``, to watch runs in its UI), the
command just runs. Otherwise a local server is started for the command's lifetime, so the many
flow processes of a pipeline share one server instead of each starting a temporary one. It listens
on ``LIC_PREFECT_PORT`` (4200), or on a free port when another server (another pipeline's) holds
that one: without a server of its own, every flow starts two temporary ones, which made the demo
27% slower (1,864 s against 1,470 s).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PORT = int(os.environ.get("LIC_PREFECT_PORT", "4200"))


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def free_port(preferred: int) -> int:
    """``preferred`` if nothing on this host listens there, else a port the OS has free."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port")  # binding port 0 does not fail while the OS has ports left


def main() -> int:
    cmd = sys.argv[1:]
    if not cmd:
        print("usage: python -m flows.server COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(cmd)
    env = dict(os.environ, PREFECT_HOME=os.environ.get("PREFECT_HOME", str(Path(".prefect").resolve())))
    port = free_port(PORT)
    if port != PORT:
        print(f"port {PORT} is taken (another Prefect server?); this run's server takes port {port}", file=sys.stderr)
    url = f"http://127.0.0.1:{port}/api"
    # the UI asks the server for the API's address; without these it says port 4200, whatever the port
    ui = dict(env, PREFECT_SERVER_API_PORT=str(port), PREFECT_SERVER_UI_API_URL=url)
    with open(".prefect-server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=ui, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(150):
                if healthy(url) or server.poll() is not None:
                    break
                time.sleep(1)
            if healthy(url):
                env["PREFECT_API_URL"] = url
                print(f"Prefect server at {url.removesuffix('/api')} (log: .prefect-server.log)", file=sys.stderr)
            else:
                print("Prefect server did not start; flows use temporary servers", file=sys.stderr)
            return subprocess.call(cmd, env=env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
