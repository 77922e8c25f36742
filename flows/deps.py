"""The project's source files a stage runs: its code dependencies.

They are what importing its flow module loads (the imports at module level, transitively: an import
inside a function is not followed), and the modules that it loads by name: the classes of the
quantizers it runs (:data:`lic.config.QUANTIZER_CLASSES`), the zoo's tables for a zoo profile's model,
``lic``'s command line where training launches torchrun, and a model of the user's own
(:func:`stage_code`).
``flows/stages.py`` lists them in ``dvc.yaml``, so a change to any of them marks the stage changed,
and a change to other code does not; :func:`code_hash` hashes them, so a stage's resumable state
belongs to the code that made it. (tests/test_pipeline.py checks them against the modules that every
stage of a run loaded.)
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any, Iterable, Iterator

from lic.config import QUANTIZER_CLASSES, is_plugin

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lic", "flows")


def _module_file(name: str) -> Path | None:
    p = ROOT / Path(*name.split("."))
    return next((c for c in (p.with_suffix(".py"), p / "__init__.py") if c.is_file()), None)


def _module_level(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes that run when a module is imported: all but the bodies of its functions."""
    for node in ast.iter_child_nodes(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield node
            yield from _module_level(node)


def _imported(path: Path, packages: tuple[str, ...], everywhere: bool = False) -> set[str]:
    """Modules of ``packages`` that importing ``path`` imports (``everywhere``: that any of its code
    imports), with their parents."""
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if everywhere else _module_level(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    return {n for n in names | parents if n.split(".")[0] in packages}


def code_deps(module: str, packages: tuple[str, ...] = PACKAGES, everywhere: bool = False) -> list[str]:
    """The source files of ``packages`` that importing ``module`` loads, transitively (``everywhere``:
    with the imports inside functions too), as paths relative to the repository; a package folder
    whose every module is among them is given as the folder."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        f = _module_file(todo.pop())
        if f is not None and f not in seen:
            seen.add(f)
            todo += sorted(_imported(f, packages, everywhere))
    return sorted(_folders({f.relative_to(ROOT).as_posix() for f in seen}))


def _folders(files: set[str]) -> set[str]:
    """``files`` (paths in the repository), a package folder whose every module is among them given
    as the folder."""
    files = {f for f in files if not any(f.startswith(d + "/") for d in files)}
    for folder in sorted({(ROOT / f).parent for f in files}, key=lambda d: len(d.parts)):
        rel = folder.relative_to(ROOT).as_posix()
        members = {p.relative_to(ROOT).as_posix() for p in folder.glob("*.py")}
        if folder.parent != ROOT and members <= files:
            files = (files - members) | {rel}
    return files


def model_deps(params: dict[str, Any]) -> list[str]:
    """The source files of the model kind ``params`` names, if it is one of the user's own,
    ``module:Class`` (:mod:`lic.models.plugin`), in the repository: its module and what that imports
    (anywhere in its code) from its own top-level package. Empty for a registered kind (or a zoo
    profile's), or for a module installed elsewhere (pin that as any other package)."""
    kind = str((params.get("model") or {}).get("kind", ""))
    if not is_plugin(kind):
        return []
    module = kind.partition(":")[0]
    return code_deps(module, (module.split(".")[0],), everywhere=True)


def stage_code(module: str, params: dict[str, Any], quantizers: Iterable[str] = ()) -> list[str]:
    """The source files that the stage of flow ``module`` runs: what importing it loads, and the modules
    it loads by name: the classes of ``quantizers``; for training (``flows.pretrain``), a zoo profile's
    model from the zoo's tables (:func:`flows.common.model_section`) and, with ``distributed``, torchrun's
    ``python -m lic train``; and the user's model (:func:`model_deps`) where it builds models."""
    extra = [QUANTIZER_CLASSES[q][0].partition(":")[0] for q in dict.fromkeys(quantizers)]
    if module == "flows.pretrain":
        extra += ["lic.zoo"] * ("zoo" in params) + ["lic.__main__", "lic.train"] * ("distributed" in params)
    files = set(code_deps(module)).union(*(code_deps(m) for m in extra))
    builds = any(d == "lic/models" or d.startswith("lic/models/") for d in files)
    return sorted(_folders(files)) + (model_deps(params) if builds else [])


def code_hash(files: list[str]) -> str:
    """SHA-256 over the names and bytes of ``files`` (paths in the repository, folders walked)."""
    h = hashlib.sha256()
    for rel in files:
        path = ROOT / rel
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
