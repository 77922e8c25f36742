"""Profiles: the pipeline's recipes in ``profiles/<name>.yaml``, each written as its differences.

A profile with ``extends: PARENT`` holds only the keys in which it differs from ``PARENT``:

    resolved(child) = merge(resolved(parent), child),

where ``merge`` goes into mappings key by key, a child's value replaces any other value (lists
too), and a child's ``null`` removes the parent's key. ``profile`` is always the profile's own
name. A profile without ``extends`` is whole. ``params.yaml`` is the resolved profile
(:func:`render`): a whole profile's own text, comments included, or a generated file for one that
extends another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lic.errors import LicError

FOLDER = Path("profiles")
EXTENDS = "extends"


def names(folder: Path = FOLDER) -> list[str]:
    """Every profile in ``folder``, sorted."""
    return sorted(p.stem for p in Path(folder).glob("*.yaml"))


def _read(name: str, folder: Path) -> dict[str, Any]:
    path = Path(folder) / f"{name}.yaml"
    if not path.is_file():
        raise LicError(f"no profile {name!r} in {folder}/; choose one of {', '.join(names(folder))}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise LicError(f"{path} is not a mapping of keys")
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys: mappings merged key by key, ``None`` removing a key."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _chain(name: str, folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """Profile ``name`` and the profiles it extends, nearest first, each as written."""
    chain = [(name, _read(name, folder))]
    while EXTENDS in chain[-1][1]:
        parent = str(chain[-1][1][EXTENDS])
        if parent in (n for n, _ in chain):
            raise LicError(f"profiles extend each other in a loop: {' -> '.join([*(n for n, _ in chain), parent])}")
        chain.append((parent, _read(parent, folder)))
    return chain


def resolve(name: str, folder: Path = FOLDER) -> dict[str, Any]:
    """The whole recipe of profile ``name``: its parents' keys with its own differences."""
    out: dict[str, Any] = {}
    for _, data in reversed(_chain(name, folder)):
        out = merge(out, {k: v for k, v in data.items() if k != EXTENDS})
    return {"profile": name, **{k: v for k, v in out.items() if k != "profile"}}


def render(name: str, folder: Path = FOLDER) -> str:
    """``params.yaml``'s text for profile ``name``: a whole profile's own file, or its resolved keys
    under its own leading comments and a line saying what it was resolved from."""
    chain = _chain(name, folder)  # first: a missing profile is one clear error
    text = (Path(folder) / f"{name}.yaml").read_text()
    if len(chain) == 1:
        return text
    comments = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comments.append(line)
    note = (f"# Resolved from {' <- '.join(f'{folder}/{n}.yaml' for n, _ in reversed(chain))}: edit the profiles, "
            "not this file.")
    body = yaml.safe_dump(resolve(name, folder), sort_keys=False, default_flow_style=None, width=100)
    return "\n".join([*comments, note, body])


def installed(text: str, folder: Path = FOLDER) -> str | None:
    """The profile whose :func:`render` is ``text`` (``params.yaml`` as a profile installed it), if any."""
    for name in names(folder):
        try:
            if render(name, folder) == text:
                return name
        except LicError:
            continue
    return None
