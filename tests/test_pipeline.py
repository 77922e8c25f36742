"""The DVC pipeline end to end on a tiny profile, in a temporary git repository, with its flows
reporting to a Prefect test server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import TINY_PARAMS, write_tiny_photos
from oracle import code_ran, probe_env, unlisted

ROOT = Path(__file__).resolve().parents[1]
STARTED: list = []  # when the module's pipeline started: the flow runs since then are its own
IMPORTS: list[Path] = []  # where each process of the module's pipeline wrote what it loaded (tests/oracle.py)


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 1500) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _status(repo: Path, env: dict[str, str]) -> set[str]:
    out = _run([str(Path(sys.executable).parent / "dvc"), "status"], repo, env)
    return {line.rstrip(":") for line in out.splitlines() if line and not line.startswith(("\t", " "))} - {
        "Data and pipelines are up to date."}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, prefect_api: str, test_images: Path) -> tuple[Path, dict]:
    import datetime as dt

    STARTED.append(dt.datetime.now(dt.timezone.utc))
    repo = tmp_path_factory.mktemp("pipeline")
    for name in ("lic", "flows"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
    write_tiny_photos(repo, test_images)
    env = dict(os.environ, PREFECT_API_URL=prefect_api, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONPATH=str(repo))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                [sys.executable, "-m", "flows.stages"]):  # dvc.yaml for this profile, as make demo writes it
        _run(cmd, repo, env)
    IMPORTS.append(tmp_path_factory.mktemp("imports"))
    _run(["dvc", "repro"], repo, env | probe_env(repo, IMPORTS[0]))
    return repo, env


def test_repro_makes_every_output_and_is_clean(repo: tuple[Path, dict]) -> None:
    path, env = repo
    root = path / "artifacts"
    for q, kinds in (("usq", ["base", "decoder", "control", "hyper-decoder"]),
                     ("tcq", ["base", "decoder", "control", "hyper-decoder"]),
                     ("rdoq", ["decoder", "hyper-decoder"])):  # RDOQ's base and controls are USQ's
        for kind in kinds:
            for key in TINY_PARAMS["lmbdas"]:
                assert (root / "models" / f"{q}-{kind}" / f"{key}.ckpt").is_file()
            assert (root / "eval" / f"{q}-{kind}.json").is_file()
        for key in TINY_PARAMS["lmbdas"]:
            assert (root / "latents" / f"{q}-{key}.zarr" / "zarr.json").is_file()
    for name in ("usq-hyper-control", "tcq-hyper-control", "usq-base-as-rdoq", "tcq-base-as-usq", "tcq-base-as-rdoq"):
        assert (root / "eval" / f"{name}.json").is_file(), name  # phase 4's control; the bases coded otherwise
    for name in ("rd_psnr.png", "rd_msssim.png", "bdrate.md", "bdrate.csv", "per_image.csv", "metrics.json",
                 "README.md"):
        assert (path / "reports" / "tiny" / name).is_file(), name
    readme = (path / "reports" / "tiny" / "README.md").read_text()
    assert "tiny" in readme and "## The training surrogate apart from the coding quantizer" in readme
    table = (path / "reports" / "tiny" / "bdrate.md").read_text()
    assert "| usq-hyper-decoder " in table and "| usq-hyper-control " in table  # phase 4 against its control
    for test, anchor in (("rdoq-decoder", "usq-control"), ("rdoq-decoder", "usq-base-as-rdoq"),
                         ("rdoq-hyper-decoder", "usq-hyper-decoder"), ("tcq-decoder", "rdoq-decoder")):
        assert re.search(rf"\| {test} +\| {anchor} +\|", table), (test, anchor)
    assert _status(path, env) == set()


def test_every_stage_depends_on_the_code_it_ran(repo: tuple[Path, dict]) -> None:
    """What each stage's processes loaded (tests/oracle.py) is among the code deps ``dvc.lock`` records
    for it, and no more than it needs: a stage that runs no TCQ runs no trellis."""
    path, _ = repo
    ran = code_ran(path, IMPORTS[0])
    lock = yaml.safe_load((path / "dvc.lock").read_text())["stages"]
    assert set(ran) == set(lock) and unlisted(path, ran) == {}
    for name in (n for n in lock if "tcq" not in n):
        assert "lic/trellis.py" not in ran[name] | {d["path"] for d in lock[name]["deps"]}, name
    assert {"flows/evaluate.py", "lic/evaluate.py", "lic/models/hyperprior.py"} <= ran["evaluate-tcq@decoder"]
    lock["evaluate-tcq@decoder"]["deps"] = [d for d in lock["evaluate-tcq@decoder"]["deps"] if d["path"] != "lic/models"]
    assert "lic/models/hyperprior.py" in unlisted(path, ran, lock)["evaluate-tcq@decoder"]  # the check can fail


def test_an_edit_reruns_only_the_stages_that_run_it(repo: tuple[Path, dict], tmp_path: Path) -> None:
    """An edit to the trellis leaves the USQ base and its fine-tunes up to date, and marks TCQ's
    stages changed; an edit to the training code marks the base changed."""
    path = tmp_path / "repo"
    shutil.copytree(repo[0], path, symlinks=True)
    env = dict(repo[1], PYTHONPATH=str(path))
    with open(path / "lic" / "trellis.py", "a") as fh:
        fh.write("# an edit\n")
    changed = _status(path, env)
    assert not {"pretrain-base", "pretrain-usq@q2", "latents-usq@q2"} & changed, changed
    assert {"pretrain-tcq@q2", "latents-tcq@q2", "evaluate-tcq@base"} <= changed, changed
    with open(path / "lic" / "train.py", "a") as fh:
        fh.write("# an edit\n")
    assert "pretrain-base" in _status(path, env)


def test_a_second_seed_trains_under_its_own_seed_and_joins_the_report(repo: tuple[Path, dict], tmp_path: Path) -> None:
    """With ``seeds: [0, 1]``, seed 1's base trains with seed 1 under ``artifacts/seed-1/`` (its stage
    names and paths: tests/test_stages.py), and the report puts seed 1's evaluations beside seed 0's
    in the table of claims across runs (here a copy of seed 0's: the report's join, not new models)."""
    from lic.checkpoint import read_checkpoint

    path = tmp_path / "repo"
    shutil.copytree(repo[0], path, symlinks=True)
    env = dict(repo[1], PYTHONPATH=str(path))
    (path / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS | {"seeds": [0, 1]}))
    _run([sys.executable, "-m", "flows.pretrain", "usq", "base", "1"], path, env)
    seeds = [read_checkpoint(path / "artifacts" / s / "models" / "pretrain" / "base.ckpt")["train_state"]
             ["train_config"]["seed"] for s in ("", "seed-1")]
    assert seeds == [0, 1]
    shutil.copytree(path / "artifacts" / "eval", path / "artifacts" / "seed-1" / "eval")
    _run([sys.executable, "-m", "flows.report"], path, env)
    spread = json.loads((path / "reports" / "tiny" / "metrics.json").read_text())["bd_rate_psnr_by_run"]
    assert spread and all(set(v) == {"seed 0", "seed 1"} for v in spread.values())
    assert "## Across seeds and machines" in (path / "reports" / "tiny" / "README.md").read_text()


def test_tcq_parameter_change_reruns_only_tcq_latents_and_followers(repo: tuple[Path, dict]) -> None:
    path, env = repo
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["tcq"]["code"]["lambda_tcq"] = 0.2
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        assert _status(path, env) == {f"{stage}@{item}" for stage, items in (
            ("latents-tcq", ("q2", "q6")), ("evaluate-tcq", ("base", "decoder", "control", "hyper-decoder",
                                                             "hyper-control")))
                                      for item in items}
    finally:
        (path / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
    assert _status(path, env) == set()


def test_new_hyperprior_marks_its_latent_datasets_changed(repo: tuple[Path, dict]) -> None:
    path, env = repo
    ckpt = path / "artifacts" / "models" / "usq-base" / "q2.ckpt"
    original = ckpt.read_bytes()
    try:
        ckpt.write_bytes(original + b"\0")  # any new content counts as a new pretrained model
        changed = _status(path, env)
    finally:
        ckpt.write_bytes(original)
    assert {"latents-usq@q2", "retrain-usq@decoder-q2", "retrain-usq@control-q2",
            "retrain-usq@hyper-decoder-q2"} <= changed
    assert not any(s.startswith("latents-tcq") or s.endswith("q6") for s in changed)


def test_rounds_add_exactly_their_stages_and_chain_their_datasets(repo: tuple[Path, dict],
                                                                 tmp_path: Path) -> None:
    """``retrain.rounds: 2`` adds TCQ's round-2 decoder (a dataset made from the round-1 decoders)
    and its control, and changes no stage that ran; the round-2 dataset names round 1's as its
    parent (that its indices move: tests/test_tcq_retrain.py)."""
    from lic.checkpoint import read_checkpoint
    from lic.datasets import diff
    from lic.latents import open_latents

    copy = tmp_path / "repo"
    shutil.copytree(repo[0], copy, symlinks=True)
    env = dict(repo[1], PYTHONPATH=str(copy))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["retrain"]["rounds"] = 2
    (copy / "params.yaml").write_text(yaml.safe_dump(params))
    _run([sys.executable, "-m", "flows.stages"], copy, env)
    assert _status(copy, env) == {
        *(f"{stage}@{key}" for stage in ("latents-tcq-decoder-r2", "retrain-tcq-decoder-r2", "retrain-tcq-control-r2")
          for key in ("q2", "q6")), "evaluate-tcq@decoder-r2", "evaluate-tcq@control-r2"}
    _run([str(Path(sys.executable).parent / "dvc"), "repro", "retrain-tcq-decoder-r2@q2"], copy, env)
    art = copy / "artifacts"
    first, second = art / "latents" / "tcq-q2.zarr", art / "latents" / "tcq-decoder-r2-q2.zarr"
    lineage = open_latents(second).attrs["lineage"]
    assert lineage["round"] == 2 and lineage["parent"]["path"] == "artifacts/latents/tcq-q2.zarr"
    assert lineage["parent"]["checkpoint_fingerprint"] == open_latents(first).attrs["lineage"]["checkpoint_fingerprint"] \
        == read_checkpoint(art / "models" / "tcq-base" / "q2.ckpt")["fingerprint"]
    assert lineage["checkpoint_fingerprint"] == read_checkpoint(art / "models" / "tcq-decoder" / "q2.ckpt")["fingerprint"]
    assert isinstance(diff(first, second)["indices_differing"]["count"], int)
    rec = json.loads((art / "models" / "tcq-decoder-r2" / "q2.json").read_text())
    assert rec["round"] == 2 and rec["cumulative_wall_s"] > rec["wall_s"] > 0


def test_flow_runs_are_completed_in_the_api(repo: tuple[Path, dict], prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    since = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=STARTED[0]))
    runs: list = []
    with get_client(sync_client=True) as client:  # the worker's server: this module's runs, not earlier files'
        while page := client.read_flow_runs(flow_run_filter=since, limit=200, offset=len(runs)):
            runs += page
        flows = {f.id: f.name for f in client.read_flows()}
    names = {flows[r.flow_id] for r in runs if r.state and r.state.is_completed()}
    assert {"pretrain", "make_latents", "retrain", "evaluate", "report"} <= names
    assert all(r.state.is_completed() for r in runs if flows[r.flow_id] in names)


def test_new_base_model_marks_every_lambda_and_dataset_after_it(repo: tuple[Path, dict]) -> None:
    path, env = repo
    base = path / "artifacts" / "models" / "pretrain" / "base.ckpt"
    original = base.read_bytes()
    try:
        base.write_bytes(original + b"\0")
        changed = _status(path, env)
    finally:
        base.write_bytes(original)
    assert {"pretrain-base", "pretrain-usq@q2", "pretrain-usq@q6", "pretrain-tcq@q2", "pretrain-tcq@q6"} <= changed
    assert not any(s.startswith(("latents", "retrain", "evaluate")) for s in changed)  # their inputs are unchanged


def test_killed_repro_reruns_cleanly_and_loses_nothing(repo: tuple[Path, dict], tmp_path: Path) -> None:
    """SIGKILL a ``dvc repro`` in the middle of a training stage: a new ``dvc repro`` continues it from
    its last checkpoint (after an edit to code it does not run), and the outputs of other stages are
    untouched. Killed again, and with a
    parameter changed, the stage starts afresh although the killed run's state is there (and leaves
    none behind). It runs on a copy of the module's repo, which the tests after it then find as the
    fixture made it. (The same through torchrun's workers: tests/test_field_route.py.)"""
    import signal
    import time

    from lic.checkpoint import load_checkpoint, read_checkpoint

    path = tmp_path / "repo"
    shutil.copytree(repo[0], path, symlinks=True)
    env = dict(repo[1], PYTHONPATH=str(path))
    target = path / "artifacts" / "models" / "usq-base" / "q2.ckpt"
    work = path / "artifacts" / ".work" / "models" / "usq-base"
    others = {p: p.read_bytes() for p in (path / "artifacts" / "models").rglob("*.ckpt") if p != target}
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["pretrain"]["finetune"]["steps"] = 200
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = str(Path(sys.executable).parent / "dvc")

    def killed_midway() -> None:  # forced: not restored from DVC's run cache
        proc = subprocess.Popen([dvc, "repro", "-f", "-s", "pretrain-usq@q2"], cwd=path, env=env,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, step = time.monotonic() + 300, 0
        while step < 4 and time.monotonic() < deadline:  # the work file of this run, past a few checkpoints
            for f in work.glob("q2.*.ckpt"):
                try:
                    step = read_checkpoint(f)["train_state"]["step"]
                except Exception:  # noqa: BLE001 - being written
                    pass
            time.sleep(0.05)
        assert proc.poll() is None, "the stage ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not target.exists() and "pretrain-usq@q2" in _status(path, env)

    killed_midway()
    with open(path / "lic" / "trellis.py", "a") as fh:  # an edit to code the stage does not run
        fh.write("# an edit\n")
    _run([dvc, "repro", "-s", "pretrain-usq@q2"], path, env)
    _, obj = load_checkpoint(target, "cpu")
    assert obj["train_state"]["step"] == 200 and obj["train_state"]["resumed_at"][0] >= 4
    assert all(p.read_bytes() == data for p, data in others.items())
    target.unlink()
    killed_midway()
    params["pretrain"]["finetune"]["lr"] = 0.0002  # another input: the killed run's state is not this run's
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    _run([dvc, "repro", "-s", "pretrain-usq@q2"], path, env)
    state = read_checkpoint(target)["train_state"]
    assert state["resumed_at"] == [] and state["step"] == 200
    assert not list(work.glob("q2.*.ckpt")), "the other run's state was left behind"


def test_latents_flow_on_a_dask_cluster_equals_the_default_runner(repo: tuple[Path, dict]) -> None:
    """``make_latents`` with 2 shards on a 2-worker Dask ``LocalCluster`` writes the same arrays as
    the pipeline's default run (1 shard, thread runner)."""
    from lic.latents import ARRAYS, open_latents

    path, env = repo
    out = path / "artifacts" / "latents" / "tcq-q2.zarr"
    kept = path / "kept.zarr"
    shutil.copytree(out, kept)
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["runner"] = {"kind": "dask", "workers": 2}
    params["latents"]["shards"] = 2
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        shutil.rmtree(out)
        _run([sys.executable, "-m", "flows.make_latents", "tcq", "q2"], path, env)
        a, b = open_latents(kept), open_latents(out)
        for key in ARRAYS:
            assert np.array_equal(a[key][:], b[key][:]), key
        shutil.rmtree(out)
        params["data"]["train_images"] = "tiny/test/china.png"  # not a folder: each shard fails
        (path / "params.yaml").write_text(yaml.safe_dump(params))
        failed = subprocess.run([sys.executable, "-m", "flows.make_latents", "tcq", "q2"], cwd=path, env=env,
                                capture_output=True, text=True, timeout=600)
        # one line says it (Prefect's own log lines may follow it)
        assert failed.returncode == 2 and any(line.endswith("china.png: no such folder of images")
                                              for line in failed.stderr.splitlines())
    finally:
        (path / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(kept, out)
    assert _status(path, env) == set()


def test_pretrain_flow_launches_torchrun(repo: tuple[Path, dict]) -> None:
    """With ``distributed.nproc_per_node: 2`` the pretrain flow trains the base model with torchrun
    (2 gloo processes); the checkpoint records both ranks, and the model kind of ``params.yaml``
    (a spatial context model here) reaches the workers with the rest of the configuration."""
    from lic.checkpoint import read_checkpoint

    path, env = repo
    out = path / "artifacts" / "models" / "pretrain" / "base.ckpt"
    kept = out.read_bytes()
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["distributed"] = {"nproc_per_node": 2}
    params["model"] = {"N": 16, "M": 16, "kind": "mbt2018"}
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        out.unlink()
        _run([sys.executable, "-m", "flows.pretrain", "usq", "base"], path, dict(env, OMP_NUM_THREADS="1"))
        obj = read_checkpoint(out)
        assert obj["train_state"]["world_size"] == 2 and obj["train_state"]["step"] == TINY_PARAMS["pretrain"]["base"]["steps"]
        assert obj["config"]["architecture"] == "mbt2018"
        assert obj["train_state"]["train_config"]["batch_size"] == TINY_PARAMS["pretrain"]["recipe"]["batch_size"]
    finally:
        (path / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
        out.write_bytes(kept)
    assert _status(path, env) == set()


def test_experiments_compare_their_claims_and_curves_in_dvc(repo: tuple[Path, dict], tmp_path: Path) -> None:
    """The README's blocks as written: a Prefect server for the UI in a terminal of its own, then, in the
    pipeline's repository, ``dvc repro`` (nothing to do) and an experiment ``tcq-02`` reporting to that
    server. With a second experiment (the baseline's ``lambda_tcq``, its stages restored from DVC's run
    cache), ``dvc exp show`` has the claims' BD-rates as columns for both, and ``dvc plots diff`` draws
    both experiments' curves."""
    import signal
    import urllib.request

    from readme import UI_URL, blocks_of, run_block, start_ui

    path = tmp_path / "repo"
    shutil.copytree(repo[0], path, symlinks=True)
    os.symlink(sys.prefix, path / ".venv")  # what make's setup would have made
    env = dict(repo[1], PYTHONPATH=str(path))
    dvc = str(Path(sys.executable).parent / "dvc")
    for cmd in (["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"]):
        _run(cmd, path, env)
    [ui], [pipeline] = blocks_of("ui"), blocks_of("pipeline")
    assert "dvc exp run -n tcq-02 -S tcq.code.lambda_tcq=0.2" in pipeline  # the experiment compared below
    server = start_ui(ui, path, dict(env, PREFECT_HOME=str(tmp_path / "ui")))
    try:
        out = run_block(pipeline, path, env)
        assert "tcq-02" in out
        query = json.dumps({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode()
        request = urllib.request.Request(f"{UI_URL}/flow_runs/filter", data=query,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert json.loads(resp.read()), "the experiment's flows did not report to the README's server"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    baseline = TINY_PARAMS["tcq"]["code"]["lambda_tcq"]
    _run([dvc, "exp", "run", "-n", "tcq-01", "-S", f"tcq.code.lambda_tcq={baseline}"], path, env)
    shown = json.loads(_run([dvc, "exp", "show", "--json"], path, env))
    exps = {e["name"]: e for row in shown for e in (row.get("experiments") or []) for e in e["revs"] if e.get("name")}
    assert {"tcq-01", "tcq-02"} <= set(exps)
    assert exps["tcq-01"]["data"]["params"]["params.yaml"]["data"]["tcq"]["code"]["lambda_tcq"] == baseline
    out = _run([dvc, "plots", "diff", "tcq-01", "tcq-02", "-o", str(tmp_path / "plots"), "--json"], path, env)
    shown_plots = json.loads(out)
    assert "errors" not in shown_plots, shown_plots["errors"]
    rendered = shown_plots["data"]
    assert {"rd-psnr", "rd-msssim"} <= set(rendered)
    revs = {d.get("rev") for d in rendered["rd-psnr"][0]["content"]["data"]["values"]}
    assert {"tcq-01", "tcq-02"} <= revs
    shown_claims = {}
    for name in ("tcq-01", "tcq-02"):  # the columns are the claims of each experiment's metrics.json
        shown_claims[name] = exps[name]["data"]["metrics"]["reports/tiny/metrics.json"]["data"].get("claims", {})
        _run([dvc, "exp", "apply", name], path, env)
        written = json.loads((path / "reports" / "tiny" / "metrics.json").read_text())["claims"]
        assert shown_claims[name] == {k: v for k, v in written.items() if v}, name  # a folded curve has no BD-rate
    assert all(shown_claims.values()), shown_claims  # some claims defined (at this size most curves fold)


def test_the_runs_leave_artifacts_in_the_prefect_ui(repo: tuple[Path, dict], prefect_api: str) -> None:
    """Progress of the trainings and retrainings, each dataset's provenance, each evaluation's RD
    points, the report's claims: under stable keys, with the numbers of the files."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from lic.latents import open_latents

    path, _ = repo
    with get_client(sync_client=True) as client:
        def latest(key: str):  # noqa: ANN202
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert found, f"no artifact {key}"
            return sorted(found, key=lambda a: a.created)[-1]

        assert latest("train-tcq-base-q2").type == "progress" and float(latest("train-tcq-base-q2").data) == 100.0
        assert float(latest("retrain-usq-decoder-q6").data) == 100.0
        card = latest("latents-tcq-q2").data
        assert open_latents(path / "artifacts" / "latents" / "tcq-q2.zarr").attrs["encoder_fingerprint"][:16] in card
        table = json.loads(latest("eval-usq-base").data) if isinstance(latest("eval-usq-base").data, str) \
            else latest("eval-usq-base").data
        bpp = json.loads((path / "artifacts" / "eval" / "usq-base.json").read_text())["results"]["bpp"]
        assert [row["bpp"] for row in table] == [round(b, 4) for b in bpp]
        metrics = json.loads((path / "reports" / "tiny" / "metrics.json").read_text())
        report = latest("report-tiny").data
        for name, v in metrics["claims"].items():
            if "psnr" in v:
                assert f"| {name} | {v['psnr']:+.2f} [" in report, name
