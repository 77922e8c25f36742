"""``lic data get`` against a local HTTP server (loopback only) serving archives made here, with
checksums computed here: success, a corrupted archive, a truncated download that resumes."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from lic import download
from lic.download import DataSet, Remote


class Server:
    """Serves ``files`` (path -> bytes) with Range support; ``cut`` paths send half their body once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.ranges: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if "Range" in self.headers:
                    server.ranges.append(self.headers["Range"])
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if self.path in server.cut:
                    server.cut.discard(self.path)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the client sees a body shorter than announced
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/RGB/a.png", _png(1))
        zf.writestr("set/RGB/b.png", _png(2))
        zf.writestr("set/GRAY/c.png", _png(3))  # outside the members pattern
        zf.writestr("set/README.txt", "not an image")
        zf.writestr("set/padding.bin", np.random.default_rng(0).bytes(300_000))  # long enough to cut in the middle
    return buf.getvalue()


def _register(monkeypatch: pytest.MonkeyPatch, server: Server, body: bytes, sha256: str | None = None) -> None:
    server.files["/tiny.zip"] = body
    remote = Remote(f"{server.url}/tiny.zip", sha256 or hashlib.sha256(body).hexdigest(), len(body))
    monkeypatch.setitem(download.REGISTRY, "tiny", DataSet((remote,), members="*/RGB/*", source="test set"))
    server.files["/k1.png"], server.files["/k2.png"] = _png(4), _png(5)
    files = tuple(Remote(f"{server.url}/k{i}.png", hashlib.sha256(server.files[f"/k{i}.png"]).hexdigest())
                  for i in (1, 2))
    monkeypatch.setitem(download.REGISTRY, "tiny-files", DataSet(files))


def test_get_checks_and_extracts_the_images(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _archive()
    _register(monkeypatch, server, body)
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 0
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["SHA256SUMS", "a.png", "b.png"]
    assert (tmp_path / "tiny" / "SHA256SUMS").read_text().split()[0] == hashlib.sha256(body).hexdigest()
    assert not list(tmp_path.glob(".tiny.*"))  # no download cache or staging left behind
    assert run_cli("data", "get", "tiny-files", "-o", tmp_path / "files") == 0
    assert (tmp_path / "files" / "k2.png").read_bytes() == server.files["/k2.png"]
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 2  # never over existing files


def test_corrupted_archive_is_refused(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    body = _archive()
    _register(monkeypatch, server, body[:-1] + b"\1", sha256=hashlib.sha256(body).hexdigest())
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar, one line
    assert last.startswith("error: ") and "SHA-256" in last and "removed" in last
    assert not (tmp_path / "tiny").exists() and not list((tmp_path / ".tiny.download").iterdir())


def test_truncated_download_resumes(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    body = _archive()
    _register(monkeypatch, server, body)
    server.cut.add("/tiny.zip")
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 2
    assert "run the same command again to resume" in capsys.readouterr().err
    part = tmp_path / ".tiny.download" / "tiny.zip.part"
    assert 0 < part.stat().st_size < len(body)
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 0
    assert server.ranges == [f"bytes={len(body) // 2}-"]  # the second try asked for the rest only
    assert sorted(p.name for p in (tmp_path / "tiny").glob("*.png")) == ["a.png", "b.png"]


def test_unknown_set_and_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli("data", "get", "imagenet", "-o", tmp_path / "x") == 2
    monkeypatch.setitem(download.REGISTRY, "gone", DataSet((Remote("http://127.0.0.1:9/x.zip", None),)))
    assert run_cli("data", "get", "gone", "-o", tmp_path / "x") == 2
