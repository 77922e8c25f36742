"""The field route's rehearsal (tests/test_field_route*.py): ``make zoo`` on a copy of this working
tree, offline, with ``profiles/zoo.yaml`` overridden only in sizes, steps and devices.

The zoo's real architecture runs (``mbt2018-mean``, N=128, M=192, qualities 1-4) with untrained
weights, which a loopback mirror serves under the zoo's file names (``LIC_ZOO_MIRROR``) into an
empty torch.hub cache. The same mirror serves Kodak-like and DIV2K-like files (``LIC_DATA_MIRROR``),
under the published file names, with the test's own checksums (``LIC_DATA_REGISTRY``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from lic.profiles import resolve
from mirror import Server
from oracle import probe_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUALITIES = (1, 2)  # the zoo's qualities 1-4 as a curve of two points: every stage kind, half the stages
# what the rehearsal overrides in profiles/zoo.yaml: sizes, steps, devices, one anchor codec and no cross-coding (and what a
# test names in rehearse()'s overrides)
SMALL = {("pretrain", "recipe"): {"batch_size": 2, "patch_size": 64, "checkpoint_every": 1, "device": "cpu"},
         ("pretrain", "finetune"): {"steps": 2},
         ("latents",): {"patches": 4, "patch_size": 64, "chunk": 2, "device": "cpu"},
         ("retrain",): {"steps": 2, "batch_size": 2, "device": "cpu"},
         ("evaluate",): {"codecs": ["jpeg"], "coding": []}}


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


def small_profile(repo: Path, qualities: tuple[int, ...] = QUALITIES, **overrides: object) -> dict:
    """``profiles/zoo.yaml`` with the sizes, steps and devices of :data:`SMALL`, the keys of
    ``qualities`` only, and ``overrides`` (``section.key`` or ``key``: value)."""
    path = repo / "profiles" / "zoo.yaml"
    profile = resolve("zoo", repo / "profiles")  # written back whole (no longer extending cpu)
    for keys, values in SMALL.items():
        section = profile
        for k in keys:
            section = section[k]
        section.update(values)
    keep = {f"q{q}" for q in qualities}
    profile["lmbdas"] = {k: v for k, v in profile["lmbdas"].items() if k in keep}
    profile["zoo"]["qualities"] = {k: v for k, v in profile["zoo"]["qualities"].items() if k in keep}
    for dotted, value in overrides.items():
        *section, key = dotted.split(".")
        (profile[section[0]] if section else profile)[key] = value
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


def rehearse(tmp: Path, prefect_api: str, photos: Path, qualities: tuple[int, ...] = QUALITIES,
             **overrides: object) -> tuple[Path, dict]:
    """Run the README's field route on a copy of the working tree (the zoo profile of
    :func:`small_profile`), each process recording what it loaded in ``tmp/imports``
    (tests/oracle.py); returns the copy and its environment."""
    from lic.zoo import zoo_source

    repo = working_tree(tmp / "repo")
    profile = small_profile(repo, qualities, **overrides)
    architecture = profile["zoo"]["architecture"]
    server = Server()
    names = {q: os.path.basename(zoo_source(q, architecture)["url"]) for q in qualities}
    registry = serve_field_files(server, photos, names, architecture)
    (tmp / "registry.yaml").write_text(yaml.safe_dump(registry))
    env = dict(os.environ, PREFECT_API_URL=prefect_api, PYTHONPATH=str(repo), TORCH_HOME=str(tmp / "torch"),
               LIC_DATA_MIRROR=server.url, LIC_ZOO_MIRROR=f"{server.url}/zoo", LIC_DATA_REGISTRY=str(tmp / "registry.yaml"),
               PATH=f"{BIN}:{os.environ['PATH']}")
    venv = Path(sys.prefix)
    (tmp / "imports").mkdir()
    try:  # the README's command; the test's environment stands in for the one `make` would set up
        proc = subprocess.run(["make", "zoo", f"VENV={venv}", "-o", str(venv / ".lic-installed")], cwd=repo,
                              env=env | probe_env(repo, tmp / "imports"), capture_output=True, text=True, timeout=3600)
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
