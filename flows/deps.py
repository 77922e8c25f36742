"""The project's source files a module imports, transitively: a stage's code dependencies.

``flows/stages.py`` lists them in ``dvc.yaml``, so a change to any of them marks the stage changed;
:func:`code_hash` hashes them, so a stage's resumable state belongs to the code that made it.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

from lic.config import is_plugin

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lic", "flows")


def _module_file(name: str) -> Path | None:
    p = ROOT / Path(*name.split("."))
    return next((c for c in (p.with_suffix(".py"), p / "__init__.py") if c.is_file()), None)


def _imported(path: Path, packages: tuple[str, ...]) -> set[str]:
    """Modules of ``packages`` that ``path`` imports anywhere in its body, with their parents."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    return {n for n in names | parents if n.split(".")[0] in packages}


def code_deps(module: str, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The source files of ``packages`` that ``module`` imports, transitively, as paths relative to the
    repository; a package folder whose every module is among them is given as the folder."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        f = _module_file(todo.pop())
        if f is not None and f not in seen:
            seen.add(f)
            todo += sorted(_imported(f, packages))
    files = {f.relative_to(ROOT).as_posix() for f in seen}
    for folder in sorted({f.parent for f in seen}, key=lambda d: len(d.parts)):
        rel = folder.relative_to(ROOT).as_posix()
        members = {p.relative_to(ROOT).as_posix() for p in folder.glob("*.py")}
        if folder.parent != ROOT and members <= files:
            files = (files - members) | {rel}
    return sorted(files)


def model_deps(params: dict[str, Any]) -> list[str]:
    """The source files of the model kind ``params`` names, if it is one of the user's own,
    ``module:Class`` (:mod:`lic.models.plugin`), in the repository: its module and what that imports
    from its own top-level package. Empty for a registered kind (or a zoo profile's), or for a module
    installed elsewhere (pin that as any other package)."""
    kind = str((params.get("model") or {}).get("kind", ""))
    if not is_plugin(kind):
        return []
    module = kind.partition(":")[0]
    return code_deps(module, (module.split(".")[0],))


def code_hash(module: str, extra: list[str] | None = None) -> str:
    """SHA-256 over the names and bytes of the files :func:`code_deps` gives for ``module``, then of
    ``extra`` (a model of the user's own: :func:`model_deps`)."""
    h = hashlib.sha256()
    for rel in [*code_deps(module), *(extra or [])]:
        path = ROOT / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
