"""The field route, rehearsed offline as the README gives it: ``make zoo`` on a copy of this working
tree, with ``profiles/zoo.yaml`` overridden only in sizes, steps and devices.

The zoo's real architecture runs (``mbt2018-mean``, N=128, M=192, qualities 1-4) with untrained
weights, which a loopback mirror serves under the zoo's file names (``LIC_ZOO_MIRROR``) into an
empty torch.hub cache. The same mirror serves Kodak-like and DIV2K-like files (``LIC_DATA_MIRROR``),
under the published file names, with the test's own checksums (``LIC_DATA_REGISTRY``). Then a
training stage is killed in the middle and continued by ``dvc repro``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
import yaml
from PIL import Image

from mirror import Server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUALITIES = (1, 2, 3, 4)
# what the rehearsal overrides in profiles/zoo.yaml: sizes, steps and devices, nothing else
SMALL = {("pretrain", "recipe"): {"batch_size": 2, "patch_size": 64, "checkpoint_every": 1, "device": "cpu"},
         ("pretrain", "finetune"): {"steps": 2},
         ("latents",): {"patches": 4, "patch_size": 64, "chunk": 2, "device": "cpu"},
         ("retrain",): {"steps": 2, "batch_size": 2, "device": "cpu"}}


def working_tree(dest: Path) -> Path:
    """The files of this working tree (tracked, and untracked but not ignored) copied to ``dest``, in a
    git repository of their own."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "rehearsal"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def small_profile(repo: Path, **zoo: object) -> dict:
    """``profiles/zoo.yaml`` with the sizes, steps and devices of :data:`SMALL` (and ``zoo`` keys)."""
    path = repo / "profiles" / "zoo.yaml"
    profile = yaml.safe_load(path.read_text())
    for keys, values in SMALL.items():
        section = profile
        for k in keys:
            section = section[k]
        section.update(values)
    profile["zoo"].update(zoo)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return profile


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def serve_field_files(server: Server, photos: Path, hub_names: dict[int, str], architecture: str) -> dict:
    """Kodak-like and DIV2K-like files under the published names, and untrained zoo weights; returns
    the registry (the test's checksums) that ``LIC_DATA_REGISTRY`` names."""
    from compressai.zoo import image_models

    crops = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos.glob("*.png"))]
    kodak = {f"kodim0{i + 1}.png": _png(c[:128, :192]) for i, c in enumerate(crops[:3])}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, c in enumerate(crops[3:7]):
            zf.writestr(f"DIV2K_train_HR/{i + 1:04d}.png", _png(c[:192, :192]))
    files = {**kodak, "DIV2K_train_HR.zip": buf.getvalue()}
    server.files.update({f"/{name}": body for name, body in files.items()})
    for quality, name in hub_names.items():
        torch.manual_seed(quality)
        net = image_models[architecture](quality=quality)
        out = io.BytesIO()
        torch.save(net.state_dict(), out)
        server.files[f"/zoo/{name}"] = out.getvalue()

    def entry(names: list[str], **rest: str) -> dict:
        return {"files": [{"url": f"https://example.invalid/{n}", "sha256": hashlib.sha256(files[n]).hexdigest(),
                           "size": len(files[n])} for n in names], **rest}

    return {"kodak": entry(sorted(kodak), source="Kodak-like: 3 crops of bundled photos"),
            "div2k-train": entry(["DIV2K_train_HR.zip"], members="DIV2K_train_HR/*", use="training",
                                 source="DIV2K-like: 4 crops of bundled photos")}


def rehearse(tmp: Path, prefect_api: str, photos: Path, architecture: str = "mbt2018-mean") -> tuple[Path, dict]:
    """Run the README's field route on a copy of the working tree; returns the copy and its environment."""
    from lic.zoo import zoo_source

    repo = working_tree(tmp / "repo")
    profile = small_profile(repo, architecture=architecture)
    server = Server()
    names = {q: os.path.basename(zoo_source(q, architecture)["url"]) for q in QUALITIES}
    registry = serve_field_files(server, photos, names, architecture)
    (tmp / "registry.yaml").write_text(yaml.safe_dump(registry))
    env = dict(os.environ, PREFECT_API_URL=prefect_api, PYTHONPATH=str(repo), TORCH_HOME=str(tmp / "torch"),
               LIC_DATA_MIRROR=server.url, LIC_ZOO_MIRROR=f"{server.url}/zoo", LIC_DATA_REGISTRY=str(tmp / "registry.yaml"),
               PATH=f"{BIN}:{os.environ['PATH']}")
    venv = Path(sys.prefix)
    try:  # the README's command; the test's environment stands in for the one `make` would set up
        proc = subprocess.run(["make", "zoo", f"VENV={venv}", "-o", str(venv / ".lic-installed")], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=3600)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert f"report: reports/{profile['profile']}/README.md" in proc.stdout
    return repo, env


def dvc(repo: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    assert not check or proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def stage_names(repo: Path, env: dict) -> set[str]:
    """Every stage of the pipeline, its loops expanded."""
    return {line.split()[0] for line in dvc(repo, env, "stage", "list", "--all").stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory, prefect_api: str, test_images: Path) -> tuple[Path, dict]:
    return rehearse(tmp_path_factory.mktemp("field"), prefect_api, test_images)


def test_every_stage_of_the_zoo_profile_ran(field: tuple[Path, dict]) -> None:
    repo, env = field
    names = stage_names(repo, env)
    locked = set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    assert names == locked, names ^ locked
    assert {f"import-usq@q{q}" for q in QUALITIES} | {"data@kodak", "data@div2k-train", "report"} <= names
    assert "Data and pipelines are up to date" in dvc(repo, env, "status").stdout
    assert not any((repo / "artifacts" / ".work").rglob("*.ckpt")), "work files left after the stages finished"


def test_the_report_overlays_compressai_and_the_downloads_stay(field: tuple[Path, dict]) -> None:
    repo, env = field
    report = (repo / "reports" / "zoo" / "README.md").read_text()
    assert "CompressAI mbt2018-mean (published)" in report
    assert sorted(p.name for p in (repo / "artifacts" / "data" / "kodak").glob("*.png")) == \
        ["kodim01.png", "kodim02.png", "kodim03.png"]
    assert len(list((repo / "artifacts" / "data" / "div2k-train").glob("*.png"))) == 4
    assert len(list(Path(env["TORCH_HOME"], "hub", "checkpoints").glob("mbt2018-mean-*.pth.tar"))) == 4
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


@pytest.mark.parametrize("nproc", [2, 1])
def test_a_killed_training_stage_continues_under_dvc_repro(field: tuple[Path, dict], nproc: int) -> None:
    """``dvc repro`` killed in the middle of a fine-tune (with torchrun's 2 data-parallel workers, then
    in one process); ``dvc repro`` again continues from the step of its last checkpoint and ends on
    the weights of an uninterrupted run. A changed parameter starts afresh, although the killed run's
    state is there."""
    repo, env = field
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
    if nproc > 1:
        return
    killed_midway()
    params["pretrain"]["finetune"]["lr"] = 0.0002  # another input: the killed run's state is not this run's
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(repo, env, "repro", "-s", stage)
    assert _train_state(out)["resumed_at"] == [] and _train_state(out)["step"] == 24
    assert not list(work.glob("q1.*.ckpt")), "the other run's state was left behind"


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


def test_the_field_route_runs_on_a_spatial_context_model(tmp_path_factory: pytest.TempPathFactory, prefect_api: str,
                                                          test_images: Path) -> None:
    """The same route with ``zoo.architecture: cheng2020-anchor`` (N = M = 128 at qualities 1-4): its
    imports, TCQ fine-tunes (one trellis per position), datasets, retraining (phase 4 included) and
    evaluations, and CompressAI's published curve of that model on the report."""
    repo, env = rehearse(tmp_path_factory.mktemp("cheng"), prefect_api, test_images, "cheng2020-anchor")
    assert stage_names(repo, env) == set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    from lic.checkpoint import read_checkpoint

    for family in ("usq-base", "tcq-base", "tcq-hyper-decoder"):
        config = read_checkpoint(repo / "artifacts" / "models" / family / "q1.ckpt")["config"]
        assert config["architecture"] == "cheng2020-anchor" and config["N"] == config["M"] == 128
    assert "CompressAI cheng2020-anchor (published)" in (repo / "reports" / "zoo" / "README.md").read_text()
