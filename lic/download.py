"""The standard data sets of learned image compression, downloaded and checked: ``lic data get``.

Each file is fetched into ``.<out>.download/`` beside the output folder, resumed with an HTTP Range
request when an earlier try was cut off, and checked against its published size and SHA-256 before
anything is extracted. The images (archive members matching the set's pattern) are then written to
a staging folder that replaces ``out`` in one rename: ``out`` is complete or absent. ``out`` keeps a
``SHA256SUMS`` of the downloaded files, so a later ``get`` of the same set into it checks it and keeps it.

A mirror (``--mirror URL`` or ``LIC_DATA_MIRROR``: a lab's cache, a host behind a firewall) serves the
same file names; the published checksums are checked all the same. ``LIC_DATA_REGISTRY`` names a YAML
file of further sets (or replacements of these), in the form :func:`lic.sources.registry` reads. The fetcher is
our own rather than ``pooch``, which does registries, hashes and mirrors too but does not resume a
cut-off download with an HTTP Range request: DIV2K alone is 3.5 GB.

Vimeo90K (82 GB of septuplets, CompressAI's training set) is not covered: download it from
http://toflow.csail.mit.edu/ and pass the folder of extracted frames to ``--images``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

from tqdm import tqdm

from lic.data import DEFAULT_SOURCES, IMAGE_SUFFIXES, write_bundled
from lic.errors import LicError
from lic.sources import DataSet, Remote, registry

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(remote: Remote, dest: Path, progress: bool = True) -> Path:
    """Download ``remote`` to ``dest``, resuming ``dest.part``; refuse a file that fails its check."""
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            if have and resp.status != 206:  # the server ignored the range: start over
                have = 0
            total = int(resp.headers.get("Content-Length", 0)) + have or remote.size
            with open(part, "ab" if have else "wb") as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                                 desc=dest.name, disable=not progress) as bar:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fh.write(block)
                    bar.update(len(block))
            if total and part.stat().st_size < total:  # the server closed before the announced length
                raise http.client.IncompleteRead(b"", total - part.stat().st_size)
    except urllib.error.URLError as exc:
        raise LicError(f"cannot download {remote.url} ({exc.reason}); run the same command again to resume") from None
    except (http.client.HTTPException, OSError) as exc:
        got = part.stat().st_size if part.exists() else 0
        raise LicError(f"download of {remote.url} cut off after {got} bytes ({type(exc).__name__}); run the same "
                       "command again to resume") from None
    size, digest = part.stat().st_size, sha256_of(part)
    if (remote.size is not None and size != remote.size) or (remote.sha256 is not None and digest != remote.sha256):
        part.unlink()
        raise LicError(f"{remote.url}: {size} bytes with SHA-256 {digest[:16]}..., not the published "
                       f"{remote.size} bytes with {str(remote.sha256)[:16]}...; the corrupt file was removed")
    os.replace(part, dest)
    return dest


def _images_of(path: Path, members: str, staging: Path) -> int:
    """Write the images of a downloaded file (an archive's members matching ``members``) to ``staging``."""
    def keep(name: str) -> bool:
        return Path(name).suffix.lower() in IMAGE_SUFFIXES and fnmatch.fnmatch(name, members)

    def put(name: str, data: bytes) -> None:
        target = staging / Path(name).name
        if target.exists():
            raise LicError(f"{path.name}: two images are named {target.name}")
        target.write_bytes(data)

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if keep(n)]
            for n in names:
                put(n, zf.read(n))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            names = [m for m in tf.getmembers() if m.isfile() and keep(m.name)]
            for m in names:
                put(m.name, tf.extractfile(m).read())
    else:
        names = [path.name]
        shutil.copyfile(path, staging / path.name)
    return len(names)


def _manifest(files: list[Path]) -> str:
    return "".join(f"{sha256_of(f)}  {f.name}\n" for f in files)


def holds(spec: DataSet, out: Path) -> bool:
    """Whether folder ``out`` holds the set ``spec``: the bundled split's photos, or a ``SHA256SUMS``
    naming every file of the set with its published SHA-256 (any, where none is published)."""
    if spec.bundled:
        want = {f"{name}.png" for *_, name, split in DEFAULT_SOURCES if split == spec.bundled}
        return want <= {p.name for p in out.iterdir()}
    sums = out / "SHA256SUMS"
    if not sums.is_file():
        return False
    have = {name: digest for digest, name in (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line)}
    return all(r.filename in have and r.sha256 in (None, have[r.filename]) for r in spec.files)


def get(name: str, out: Path, progress: bool = True, mirror: str | None = None) -> int:
    """Download, check and extract data set ``name`` into ``out``; returns the number of images.

    A folder that already holds the set is kept as it is; one that holds other files is refused.
    ``mirror`` (default ``LIC_DATA_MIRROR``) serves the same file names as the published URLs.
    """
    sets = registry()
    if name not in sets:
        raise LicError(f"unknown data set {name!r}; choose one of {', '.join(sorted(sets))}")
    spec, out = sets[name], Path(out)
    if out.exists() and any(out.iterdir()):
        if holds(spec, out):
            return len([p for p in out.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES])
        raise LicError(f"{out} holds files that are not the data set {name}; move them, or choose another folder")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cache = out.with_name(f".{out.name}.download")
    if spec.bundled:
        count = len(list(write_bundled(spec.bundled, staging).iterdir()))
    else:
        mirror = mirror or os.environ.get("LIC_DATA_MIRROR") or None
        files = [fetch(r.at(mirror), cache / r.filename, progress) for r in spec.files]
        count = sum(_images_of(f, spec.members, staging) for f in files)
        if count == 0:
            raise LicError(f"{name}: the download holds no images matching {spec.members!r}")
        (staging / "SHA256SUMS").write_text(_manifest(files))
        for r, f in zip(spec.files, files):
            if r.sha256 is None:
                warnings.warn(f"{r.url} has no published SHA-256; this download's is {sha256_of(f)}", stacklevel=2)
    if out.exists():
        out.rmdir()
    os.replace(staging, out)
    shutil.rmtree(cache, ignore_errors=True)
    return count
