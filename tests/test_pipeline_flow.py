"""``python -m flows.pipeline`` (Prefect without DVC) on a tiny profile: its steps run concurrently
on the task runner ``params.yaml`` names, and the outputs do not depend on which."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import TINY_PARAMS, write_tiny_photos

ROOT = Path(__file__).resolve().parents[1]
# one lambda: every step of a pipeline, and its concurrency, in half the tasks of two
PARAMS = TINY_PARAMS | {"lmbdas": {"q2": TINY_PARAMS["lmbdas"]["q2"]}, "retrain": TINY_PARAMS["retrain"] | {"rounds": 2}}


def _pipeline(root: Path, runner: dict, env: dict[str, str], test_images: Path,
              params: dict = PARAMS) -> subprocess.CompletedProcess:
    root.mkdir(exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params | {"runner": runner}))
    write_tiny_photos(root, test_images)
    return subprocess.run([sys.executable, "-m", "flows.pipeline"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.fixture(scope="module")
def env(prefect_api: str) -> dict[str, str]:
    return dict(os.environ, PREFECT_API_URL=prefect_api, PYTHONPATH=str(ROOT))


def test_dask_cluster_and_process_pool_give_the_same_outputs(tmp_path: Path, env: dict[str, str],
                                                             test_images: Path) -> None:
    from lic.checkpoint import read_checkpoint
    from lic.latents import ARRAYS, open_latents

    runs = {kind: _pipeline(tmp_path / kind, {"kind": kind, "workers": 2}, env, test_images)
            for kind in ("processes", "dask")}
    for kind, run in runs.items():
        assert run.returncode == 0, f"{kind}: {run.stderr[-3000:]}"
    a, b = tmp_path / "processes" / "artifacts", tmp_path / "dask" / "artifacts"
    ckpts = sorted(p.relative_to(a) for p in a.rglob("*.ckpt"))
    # the base; per lambda, 5 USQ and 7 TCQ families (base, decoder, control, hyper-decoder, hyper-control,
    # round 2 of the decoder and of the control) and RDOQ's decoder and hyper-decoder
    assert len(ckpts) == 1 + 5 + 7 + 2
    assert len(list(a.glob("latents/tcq-decoder-r2-*.zarr"))) == 1
    for rel in ckpts:
        assert read_checkpoint(a / rel)["fingerprint"] == read_checkpoint(b / rel)["fingerprint"], rel
    for rel in sorted(p.relative_to(a) for p in a.glob("latents/*.zarr")):
        for key in ARRAYS:
            assert np.array_equal(open_latents(a / rel)[key][:], open_latents(b / rel)[key][:]), (rel, key)
    for rel in sorted(p.relative_to(a) for p in a.glob("eval/*.json")):
        assert json.loads((a / rel).read_text())["results"]["bpp"] == json.loads((b / rel).read_text())["results"]["bpp"]
    assert (tmp_path / "dask" / "reports" / "tiny" / "bdrate.md").is_file()


def test_threads_are_refused_for_concurrent_training(tmp_path: Path, env: dict[str, str], test_images: Path) -> None:
    run = _pipeline(tmp_path / "t", {"kind": "threads", "workers": 2}, env, test_images)
    assert run.returncode == 2 and "share torch's random number generator" in run.stderr.splitlines()[-1]
    assert not (tmp_path / "t" / "artifacts").exists()


@pytest.mark.parametrize("kind,extra", [("channel-context", {"slices": 4}), ("own_model:WideSynthesis", {})])
def test_other_model_kinds_run_every_phase(tmp_path: Path, env: dict[str, str], test_images: Path, kind: str,
                                           extra: dict) -> None:
    """``model.kind: channel-context``, and a user's own CompressAI class (docs/own-model.md's example, in
    the pipeline's folder): base, fine-tunes, datasets, phases 3 and 4, the controls and the evaluations,
    every checkpoint of that kind, and the report (rounds: the test above)."""
    from lic.checkpoint import read_checkpoint

    root = tmp_path / "kind"
    root.mkdir()
    if ":" in kind:
        shutil.copy(ROOT / "examples" / "own_model.py", root)
    params = PARAMS | {"model": {"N": 16, "M": 16, "kind": kind, **extra}, "retrain": TINY_PARAMS["retrain"]}
    run = _pipeline(root, {"kind": "processes", "workers": 2}, env, test_images, params)
    assert run.returncode == 0, run.stderr[-3000:]
    ckpts = list((root / "artifacts").rglob("*.ckpt"))
    # the base; per training quantizer, base, decoder, control, hyper-decoder, hyper-control; RDOQ's decoder
    # and hyper-decoder (its base and controls are USQ's)
    assert len(ckpts) == 1 + 5 + 5 + 2
    assert all(read_checkpoint(c)["config"]["architecture"] == kind for c in ckpts)
    assert (root / "reports" / "tiny" / "bdrate.md").is_file()
