"""The pipeline's definition: ``dvc.yaml`` is what ``flows/stages.py`` writes, and each flow's command
line refuses bad arguments in one line. (That every stage depends on the code it runs is checked on
real runs: tests/test_pipeline.py and tests/test_field_route.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows import stages
from lic import profiles

ROOT = Path(__file__).resolve().parents[1]


def test_dvc_yaml_is_written_by_flows_stages() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert (ROOT / "dvc.yaml").read_text() == stages.dvc_yaml(params), "run: python -m flows.stages"


def test_stage_paths_come_from_flows_common() -> None:
    from flows.common import base, checkpoint, evaluation, latents

    text = (ROOT / "dvc.yaml").read_text()
    for path in (base(), checkpoint("tcq", "${item.mode}", "${item.key}"), latents("usq", "${key}"),
                 evaluation("usq-${item}")):
        assert str(path) in text


@pytest.mark.parametrize("args, says", [
    (["flows.evaluate", "nosuchvariant"], "unknown model family or codec 'nosuchvariant'"),
    (["flows.evaluate", "tcq-decoder-r2"], "unknown model family or codec"),  # the demo runs one round
    (["flows.pretrain", "tcq", "base"], "the shared base model is trained with USQ noise"),
    (["flows.pretrain", "usq", "q0"], "unknown lambda key 'q0'; params.yaml and the pipeline define q1, q2"),
    (["flows.pretrain", "vq", "q1"], "unknown quantizer 'vq'"),
    (["flows.make_latents", "usq", "q9"], "unknown lambda key 'q9'"),
    (["flows.make_latents", "usq", "q1", "7"], "unknown seed '7'; params.yaml and the pipeline define 0"),
    (["flows.evaluate", "usq-base", "x"], "unknown seed 'x'"),
    (["flows.retrain", "hyper-decoder-stale-r2", "tcq", "q1"], "unknown retraining family for tcq 'hyper-decoder-stale-r2'"),
    (["flows.retrain", "decoder", "usq"], "usage: python -m flows.retrain FAMILY QUANTIZER KEY [SEED]"),
    (["flows.make_latents", "tcq", "q1", "0", "decoder-r2"], "unknown later-round family for tcq 'decoder-r2'"),
    (["flows.report", "extra"], "usage: python -m flows.report"),
    (["flows.data", "x"], "unknown data set 'x'; choose one of bundled-train, bundled-test, kodak"),
    (["flows.data"], "usage: python -m flows.data NAME"),
    (["flows.pipeline", "x"], "usage: python -m flows.pipeline"),
])
def test_flow_command_lines_refuse_bad_arguments_in_one_line(args: list[str], says: str, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each flow's ``python -m`` entry, run in this process (``runpy``, as ``-m`` runs it) so that the
    checks share one import of Prefect and torch; the test below runs one of them as its own process."""
    import runpy

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["-m", *args[1:]])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(args[0], run_name="__main__", alter_sys=True)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert says in err and "Traceback" not in err
    assert err.strip().count("\n") == 0, err


def test_a_flow_command_line_refuses_bad_arguments_as_its_own_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "flows.retrain", "decoder", "usq"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "usage: python -m flows.retrain FAMILY QUANTIZER KEY [SEED]"


PROFILES = [*profiles.names(ROOT / "profiles"), "params.yaml"]


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_builds_its_typed_configs(name: str) -> None:
    from flows.common import model_section
    from flows.runners import RunnerConfig
    from lic.config import EvaluateConfig, LatentsConfig, ModelConfig, RetrainConfig, RetrainPlan, TrainConfig

    p = yaml.safe_load((ROOT / name).read_text()) if name == "params.yaml" else profiles.resolve(name, ROOT / "profiles")
    ModelConfig.from_params(model_section(p), "usq", {})
    for phase in ("base", "finetune"):
        if phase in p["pretrain"]:
            TrainConfig(**{**p["pretrain"]["recipe"], **p["pretrain"][phase], "lmbda": 0.01})
    LatentsConfig(**p["latents"])
    plan, run = RetrainPlan.split(p["retrain"])
    assert plan.families("tcq")
    RetrainConfig(mode="decoder", **run)
    EvaluateConfig(**p["evaluate"])
    RunnerConfig.from_params(p)
    assert stages.stages(p)


def test_zoo_profile_imports_instead_of_training_a_base(tmp_path: Path) -> None:
    """``dvc dag`` of the zoo profile: import stages feed the TCQ fine-tunes; no phase-1 training of USQ."""
    import shutil

    for name in ("lic", "flows"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "params.yaml").write_text(profiles.render("zoo", ROOT / "profiles"))
    dvc = str(Path(sys.executable).parent / "dvc")
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [sys.executable, "-m", "flows.stages"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    dag = subprocess.run([dvc, "dag", "--dot"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    for key in ("q1", "q2", "q3", "q4"):
        assert f'"import-usq@{key}" -> "pretrain-tcq@{key}"' in dag
        assert f'"import-usq@{key}" -> "latents-usq@{key}"' in dag
    assert "pretrain-base" not in dag and "pretrain-usq" not in dag
    stage = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["import-usq"]
    assert {"zoo.architecture", "zoo.qualities.${key}"} <= set(stage["do"]["params"])


@pytest.mark.parametrize("name", ["demo", "zoo", "seeds"])
def test_the_prefect_pipeline_runs_the_stages_of_dvc_yaml_in_dvcs_order(tmp_path: Path, name: str) -> None:
    """``python -m flows.pipeline`` submits :func:`flows.stages.runs`, each after :func:`flows.stages.upstream`:
    the names of ``dvc.yaml``'s stages, joined as ``dvc dag`` joins them."""
    import re
    import shutil

    for folder in ("lic", "flows"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = profiles.resolve(name, ROOT / "profiles")
    (tmp_path / "params.yaml").write_text(profiles.render(name, ROOT / "profiles"))
    dvc = str(Path(sys.executable).parent / "dvc")
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [sys.executable, "-m", "flows.stages"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    dot = subprocess.run([dvc, "dag", "--dot"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    plan = stages.runs(params)
    assert {r.name for r in plan} == set(re.findall(r'^\s*"([^"]+)";?$', dot, flags=re.M))
    edges = {(u, r) for r, after in stages.upstream(plan).items() for u in after}
    assert edges == set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))


def test_a_second_seed_runs_every_phase_under_its_own_names_and_paths() -> None:
    params = {**yaml.safe_load((ROOT / "params.yaml").read_text()), "seeds": [0, 1]}
    one = stages.stages({**params, "seeds": [0]})
    two = stages.stages(params)
    names = [s.name for s in two]
    assert [s.name for s in one] == [n for n in names if "seed1" not in n]  # seed 0 keeps its names
    extra = [s for s in two if s.name.endswith("-seed1")]
    assert {s.name for s in extra} == {f"{s.name}-seed1" for s in one if s.name not in ("data", "anchor", "report")}
    assert all(s.args[-1] == "1" and all("seed-1" in o for o in s.outs) for s in extra)
    report = next(s for s in two if s.name == "report")
    runs = tuple((params.get("report") or {}).get("runs", {}).values())  # other machines' runs, after the seeds
    assert report.deps == ("artifacts/eval", "artifacts/seed-1/eval", *runs)
    with pytest.raises(Exception, match="one seed"):
        stages.stages({**params, "zoo": {}})


def test_every_profile_is_a_valid_profile_without_duplicate_keys() -> None:
    """A key given twice (YAML keeps the last one silently) or a profile ``flows.stages`` cannot write a
    pipeline for is refused here, not on a user's machine."""
    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            duplicated = {k for k in keys if keys.count(k) > 1}
            assert not duplicated, f"duplicate keys {duplicated} at line {node.start_mark.line + 1}"
            return super().construct_mapping(node, deep)

    folder = ROOT / "profiles"
    for name in profiles.names(folder):
        own = yaml.load((folder / f"{name}.yaml").read_text(), Loader=Strict)
        assert own.get("profile", name) == name and own.get("extends", "demo") in profiles.names(folder), name
        params = yaml.load(profiles.render(name, folder), Loader=Strict)  # params.yaml as make run writes it
        assert params == profiles.resolve(name, folder) and params["profile"] == name
        assert stages.dvc_yaml(params).startswith("# Generated")


def test_prune_lock_drops_only_the_stages_the_profile_has_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    Path("dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "pretrain-usq@q1": {"cmd": "a"}, "retrain-tcq@decoder-q2": {"cmd": "b"}, "evaluate-usq@gone": {"cmd": "c"}}}))
    assert stages.prune_lock(params) == ["evaluate-usq@gone"]
    assert set(yaml.safe_load(Path("dvc.lock").read_text())["stages"]) == {"pretrain-usq@q1", "retrain-tcq@decoder-q2"}


def test_rdoq_codes_usqs_models_and_reuses_its_controls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RDOQ trains with USQ's noise: its latents and retraining start from USQ's bases, it has no
    controls of its own (USQ's are the same runs) and no phase 1; without USQ it is refused in one line."""
    from flows.pretrain import check
    from lic.errors import LicError

    params = {**yaml.safe_load((ROOT / "params.yaml").read_text()), "quantizers": ["usq", "tcq", "rdoq"]}
    plan = {r.name: r for r in stages.runs(params)}
    rdoq = sorted(n for n in plan if "rdoq" in n.partition("@")[0])
    assert not any(n.startswith("pretrain-rdoq") for n in plan)
    assert {n.partition("@")[2] for n in rdoq if n.startswith("retrain-rdoq")} == {
        f"{mode}-{key}" for mode in ("decoder", "hyper-decoder", "hyper-decoder-stale") for key in params["lmbdas"]}
    assert "artifacts/models/usq-base/q1.ckpt" in plan["latents-rdoq@q1"].deps
    assert {"artifacts/models/usq-base/q1.ckpt", "artifacts/latents/rdoq-q1.zarr"} <= set(plan["retrain-rdoq@decoder-q1"].deps)
    assert {n for n in plan if n.startswith("evaluate-rdoq")} == {
        "evaluate-rdoq@decoder", "evaluate-rdoq@hyper-decoder", "evaluate-rdoq@hyper-decoder-stale"}
    alone = {r.name for r in stages.runs({**params, "evaluate": {**params["evaluate"], "coding": []}})}
    assert "evaluate-usq-coded@base-as-rdoq" in alone  # the base of RDOQ's families, coded with RDOQ
    with pytest.raises(LicError, match="rdoq codes usq's models and reuses its controls: list usq too"):
        stages.runs({**params, "quantizers": ["tcq", "rdoq"]})
    with pytest.raises(LicError, match="with retrain.validation a control keeps the weights best on its own"):
        stages.runs({**params, "retrain": {**params["retrain"], "validation": 0.1}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LicError, match="rdoq trains with usq's surrogate"):
        check("rdoq", "q1")
