"""What each stage of a pipeline run loaded: the oracle of a stage's code dependencies, which shares
no code with flows/deps.py. ``probe_env`` puts tests/probe/sitecustomize.py on a run's ``PYTHONPATH``;
every Python process of the run then records the project's files it loaded, and :func:`code_ran`
joins each process (a torchrun worker through its parents) to the ``dvc.lock`` stage it belongs to."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PROBE = Path(__file__).with_name("probe")


def probe_env(repo: Path, records: Path) -> dict[str, str]:
    """The variables that make every Python process under ``repo`` record what it loaded in ``records``."""
    return {"PYTHONPATH": f"{PROBE}:{repo}", "LIC_IMPORTS_OUT": str(records), "LIC_IMPORTS_ROOT": str(repo)}


def code_ran(repo: Path, records: Path) -> dict[str, set[str]]:
    """Per stage of ``repo``'s ``dvc.lock``, the project files its processes loaded; a worker that
    loaded project code and belongs to no stage fails."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    by_cmd = {entry["cmd"]: name for name, entry in lock.items()}
    procs = [json.loads(f.read_text()) for f in records.glob("*.json")]
    by_pid = {p["pid"]: p for p in procs}

    def cmd(p: dict) -> str:
        return " ".join(["python -m", f"flows.{Path(p['argv'][0]).stem}", *p["argv"][1:]])

    ran: dict[str, set[str]] = {}
    for p in filter(lambda p: p["files"], procs):
        stage = p
        while stage is not None and not (stage["argv"][0].startswith(f"{repo}/flows/") and cmd(stage) in by_cmd):
            stage = by_pid.get(stage["ppid"])  # a worker: the stage that started it
        if stage is not None:
            ran.setdefault(by_cmd[cmd(stage)], set()).update(p["files"])
        else:  # not of a stage (make's python -m flows.stages), unless a process of the run started it
            assert p["ppid"] not in by_pid, f"a worker of no stage loaded the project's code: {p['argv']}"
    return ran


def unlisted(repo: Path, ran: dict[str, set[str]], lock: dict | None = None) -> dict[str, set[str]]:
    """Per stage, the files it loaded that none of its ``dvc.lock`` deps (a file or a folder above it)
    covers (``lock``: the stages of a ``dvc.lock`` in place of ``repo``'s)."""
    lock = lock or yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    gaps = {}
    for name, files in ran.items():
        deps = [d["path"].rstrip("/") for d in lock[name]["deps"]]
        if missing := {f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)}:
            gaps[name] = missing
    return gaps
