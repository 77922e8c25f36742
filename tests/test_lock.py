"""The locked environment: ``requirements.lock`` (``make lock``, uv) pins every dependency with its
hashes, agrees with ``pyproject.toml``'s ranges, and is what this environment holds (``make`` installs
from it, and CI runs ``make test``)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, tuple[str, str | None, int]]:
    """``name -> (version, marker, number of hashes)`` from the lock."""
    text = (ROOT / "requirements.lock").read_text()
    out = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = entry.splitlines()[0]
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?", head)
        if m:
            out[canonicalize_name(m[1])] = (m[2], m[3].strip() if m[3] else None, entry.count("--hash=sha256:"))
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    lock = locked()
    assert len(lock) > 100
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(lock[name][0], prereleases=True), \
            f"{req.name}: locked {lock[name][0]} is outside {req.specifier}: run make lock"
    assert all(hashes > 0 for _, _, hashes in lock.values())


def test_this_environment_is_the_lock() -> None:
    """What ``make`` installed (with ``--require-hashes``) is what the lock says, for this Python."""
    differ = {}
    for name, (version, marker, _) in locked().items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != version:
            differ[name] = (version, have)
    assert not differ, f"installed versions differ from requirements.lock (locked, installed): {differ}; " \
                       f"run make setup ({sys.prefix})"
