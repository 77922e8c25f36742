"""``lic data get`` against a local HTTP server (loopback only) serving archives made here, with
checksums computed here: success, a corrupted archive, a truncated download that resumes."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from mirror import Server
from lic import sources
from lic.sources import DataSet, Remote


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


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
    monkeypatch.setitem(sources.REGISTRY, "tiny", DataSet((remote,), members="*/RGB/*", source="test set"))
    server.files["/k1.png"], server.files["/k2.png"] = _png(4), _png(5)
    files = tuple(Remote(f"{server.url}/k{i}.png", hashlib.sha256(server.files[f"/k{i}.png"]).hexdigest())
                  for i in (1, 2))
    monkeypatch.setitem(sources.REGISTRY, "tiny-files", DataSet(files))


def test_get_checks_and_extracts_the_images(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _archive()
    _register(monkeypatch, server, body)
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 0
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["SHA256SUMS", "a.png", "b.png"]
    assert (tmp_path / "tiny" / "SHA256SUMS").read_text().split()[0] == hashlib.sha256(body).hexdigest()
    assert not list(tmp_path.glob(".tiny.*"))  # no download cache or staging left behind
    assert run_cli("data", "get", "tiny-files", "-o", tmp_path / "files") == 0
    assert (tmp_path / "files" / "k2.png").read_bytes() == server.files["/k2.png"]
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "tiny") == 0  # holds the set: kept
    assert run_cli("data", "get", "tiny-files", "-o", tmp_path / "tiny") == 2  # never over other files


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
    monkeypatch.setitem(sources.REGISTRY, "gone", DataSet((Remote("http://127.0.0.1:9/x.zip", None),)))
    assert run_cli("data", "get", "gone", "-o", tmp_path / "x") == 2


def test_a_mirror_serves_the_same_file_names_and_checksums_still_count(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The registry's URL is unreachable; ``--mirror`` (or ``LIC_DATA_MIRROR``) serves the same file name."""
    body = _archive()
    server.files["/mirror/tiny.zip"] = body
    remote = Remote("http://127.0.0.1:9/published/tiny.zip", hashlib.sha256(body).hexdigest(), len(body))
    monkeypatch.setitem(sources.REGISTRY, "tiny", DataSet((remote,), members="*/RGB/*"))
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "a", "--mirror", f"{server.url}/mirror") == 0
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == ["a.png", "b.png"]
    monkeypatch.setenv("LIC_DATA_MIRROR", f"{server.url}/mirror/")
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "b") == 0
    server.files["/mirror/tiny.zip"] = body[:-1] + b"\1"  # a mirror serving another file is refused
    assert run_cli("data", "get", "tiny", "-o", tmp_path / "c") == 2
    assert "not the published" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_a_registry_file_adds_sets_and_a_folder_holding_the_set_is_kept(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    server.files["/x1.png"], server.files["/x2.png"] = _png(7), _png(8)
    registry = {"mine": {"files": [{"url": f"{server.url}/x{i}.png",
                                    "sha256": hashlib.sha256(server.files[f"/x{i}.png"]).hexdigest()} for i in (1, 2)],
                         "use": "training", "source": "a lab's own set"}}
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(registry))
    monkeypatch.setenv("LIC_DATA_REGISTRY", str(tmp_path / "registry.yaml"))
    assert run_cli("data", "get", "mine", "-o", tmp_path / "mine") == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "mine").iterdir()}
    server.files.clear()  # a second get needs no server: the folder holds the set and is kept as it is
    assert run_cli("data", "get", "mine", "-o", tmp_path / "mine") == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "mine").iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.png").write_bytes(_png(9))  # a user's own files are never replaced
    assert run_cli("data", "get", "mine", "-o", tmp_path / "other") == 2
    assert (tmp_path / "other" / "mine.png").read_bytes() == _png(9)
    (tmp_path / "registry.yaml").write_text("mine: [not, a, set]")
    assert run_cli("data", "get", "mine", "-o", tmp_path / "x") == 2


def test_the_bundled_splits_are_sets_too(tmp_path: Path) -> None:
    from lic.data import split_sizes

    assert run_cli("data", "get", "bundled-test", "-o", tmp_path / "test") == 0
    assert len(list((tmp_path / "test").glob("*.png"))) == split_sizes()[1]
