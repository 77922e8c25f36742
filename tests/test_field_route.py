"""The field route, rehearsed offline as the README gives it (``make zoo``; tests/rehearsal.py) on the
zoo's default model; then a training stage is killed in the middle and continued by ``dvc repro``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from oracle import code_ran, unlisted
from rehearsal import BIN, QUALITIES, dvc, rehearse, stage_names


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory, prefect_api: str, test_images: Path) -> tuple[Path, dict]:
    # RDOQ's stages (latents, retraining and evaluations from a USQ base) run in the tiny pipeline (test_pipeline)
    return rehearse(tmp_path_factory.mktemp("field"), prefect_api, test_images,
                    **{"retrain.rounds": 1, "quantizers": ["usq", "tcq"]})


def test_every_stage_of_the_zoo_profile_ran(field: tuple[Path, dict]) -> None:
    repo, env = field
    names = stage_names(repo, env)
    locked = set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    assert names == locked, names ^ locked
    assert {f"import-usq@q{q}" for q in QUALITIES} | {"data@kodak", "data@div2k-train", "report"} <= names
    assert "Data and pipelines are up to date" in dvc(repo, env, "status").stdout
    assert not any((repo / "artifacts" / ".work").rglob("*.ckpt")), "work files left after the stages finished"
    ran = code_ran(repo, repo.parent / "imports")  # every stage depends on the code it ran: the zoo's too
    assert set(ran) == locked, set(ran) ^ locked
    assert unlisted(repo, ran) == {} and "lic/zoo.py" in ran["pretrain-tcq@q1"]


def test_the_report_overlays_compressai_and_the_downloads_stay(field: tuple[Path, dict]) -> None:
    repo, env = field
    report = (repo / "reports" / "zoo" / "README.md").read_text()
    assert "CompressAI mbt2018-mean (published)" in report
    assert sorted(p.name for p in (repo / "artifacts" / "data" / "kodak").glob("*.png")) == \
        ["kodim01.png", "kodim02.png", "kodim03.png"]
    assert len(list((repo / "artifacts" / "data" / "div2k-train").glob("*.png"))) == 4
    assert len(list(Path(env["TORCH_HOME"], "hub", "checkpoints").glob("mbt2018-mean-*.pth.tar"))) == len(QUALITIES)
    before = {p: p.stat().st_mtime_ns for p in (repo / "artifacts" / "data").rglob("*.png")}
    dvc(repo, env, "repro", "-f", "-s", "data@kodak")  # the stage again: the folder holds the set, kept as it is
    assert {p: p.stat().st_mtime_ns for p in (repo / "artifacts" / "data").rglob("*.png")} == before


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and every process it started, torchrun's workers (in sessions of their own) too."""
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _train_state(path: Path) -> dict:
    from lic.checkpoint import read_checkpoint

    return read_checkpoint(path)["train_state"]


def test_a_killed_training_stage_continues_under_dvc_repro(field: tuple[Path, dict]) -> None:
    """``dvc repro`` killed in the middle of a fine-tune with torchrun's 2 data-parallel workers;
    ``dvc repro`` again continues from the step of its last checkpoint and ends on the weights of an
    uninterrupted run. (In one process, and a changed parameter starting afresh:
    tests/test_pipeline.py.)"""
    repo, env, nproc = *field, 2
    stage, out = "pretrain-tcq@q1", repo / "artifacts" / "models" / "tcq-base" / "q1.ckpt"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["pretrain"]["finetune"]["steps"] = 24
    params["pretrain"]["recipe"]["checkpoint_every"] = 3
    params["distributed"] = {"nproc_per_node": nproc}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([sys.executable, "-m", "flows.stages"], cwd=repo, env=env, check=True, capture_output=True)
    work = repo / "artifacts" / ".work" / "models" / "tcq-base"

    def killed_midway() -> int:
        proc = subprocess.Popen([str(BIN / "dvc"), "repro", "-f", "-s", stage], cwd=repo, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 600
        step = 0
        while proc.poll() is None and time.monotonic() < deadline and step < 9:
            for f in work.glob("q1.*.ckpt"):
                try:
                    step = _train_state(f)["step"]
                except Exception:  # noqa: BLE001 - not written yet
                    pass
            time.sleep(0.05)
        assert proc.poll() is None, "the stage ended before it could be killed"
        _kill_tree(proc)
        (f,) = work.glob("q1.*.ckpt")
        return _train_state(f)["step"]

    step = killed_midway()
    assert 9 <= step < 24
    dvc(repo, env, "repro", "-s", stage)
    state = _train_state(out)
    assert state["step"] == 24 and state["resumed_at"] == [step]
    resumed = out.read_bytes()
    dvc(repo, env, "repro", "-f", "-s", stage)  # uninterrupted, from step 0
    assert _train_state(out)["resumed_at"] == [] and _fingerprint(out) == _fingerprint_of(resumed, repo)
    assert _train_state(out)["world_size"] == nproc


def _fingerprint(path: Path) -> str:
    from lic.checkpoint import read_checkpoint

    return read_checkpoint(path)["fingerprint"]


def _fingerprint_of(data: bytes, tmp: Path) -> str:
    path = tmp / "resumed.ckpt"
    path.write_bytes(data)
    try:
        return _fingerprint(path)
    finally:
        path.unlink()
