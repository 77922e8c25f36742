"""Profiles written as differences (lic.profiles) and their installation as params.yaml (flows.stages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import stages
from lic import profiles
from lic.errors import LicError

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, **files: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / f"{name}.yaml").write_text(f"# {name}'s own comment\n" + yaml.safe_dump(data, sort_keys=False))
    return folder


def test_a_child_merges_mappings_replaces_values_and_lists_and_removes_nulls(tmp_path: Path) -> None:
    folder = _write(tmp_path / "profiles",
                    base={"profile": "base", "a": {"x": 1, "y": [1, 2]}, "b": 2, "c": {"z": 3}},
                    child={"extends": "base", "a": {"y": [3]}, "c": None, "d": 4},
                    grandchild={"extends": "child", "a": {"x": 5}})
    assert profiles.resolve("child", folder) == {"profile": "child", "a": {"x": 1, "y": [3]}, "b": 2, "d": 4}
    assert profiles.resolve("grandchild", folder) == {"profile": "grandchild", "a": {"x": 5, "y": [3]}, "b": 2, "d": 4}
    text = profiles.render("grandchild", folder)
    assert text.startswith("# grandchild's own comment\n# Resolved from ")  # the profile's words, then where from
    assert "profiles/base.yaml <- " in text and yaml.safe_load(text) == profiles.resolve("grandchild", folder)
    assert profiles.render("base", folder) == (folder / "base.yaml").read_text()  # a whole profile, as written
    assert profiles.installed(text, folder) == "grandchild" and profiles.installed("x: 1\n", folder) is None


def test_a_loop_or_a_missing_parent_is_one_clear_error(tmp_path: Path) -> None:
    folder = _write(tmp_path / "profiles", a={"extends": "b"}, b={"extends": "a"}, c={"extends": "gone"})
    with pytest.raises(LicError, match="in a loop: a -> b -> a"):
        profiles.resolve("a", folder)
    with pytest.raises(LicError, match="in a loop: a -> b -> a"):
        profiles.render("a", folder)
    assert profiles.installed("x: 1\n", folder) is None  # the broken profiles are passed over
    with pytest.raises(LicError, match="no profile 'gone'"):
        profiles.resolve("c", folder)


def _leaves(d: dict, pre: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _leaves(v, f"{pre}{k}.") if isinstance(v, dict) and v else {f"{pre}{k}": v}
    return out


def test_each_truth_lives_in_one_profile() -> None:
    """One whole profile (demo); every other one names its parent and holds only keys whose value
    differs from the parent's, so TCQ's coding defaults and each ladder are written once."""
    folder = ROOT / "profiles"
    whole = [n for n in profiles.names(folder) if "extends" not in yaml.safe_load((folder / f"{n}.yaml").read_text())]
    assert whole == ["demo"]
    for name in profiles.names(folder):
        own = yaml.safe_load((folder / f"{name}.yaml").read_text())
        if "extends" not in own:
            continue
        parent = _leaves(profiles.resolve(own["extends"], folder))
        repeated = [k for k, v in _leaves(own).items() if k != "extends" and k in parent and parent[k] == v]
        assert not repeated, f"{name} repeats its parent's {repeated}"


def test_use_profile_installs_the_resolved_profile_and_keeps_edits_of_your_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path / "profiles", demo={"profile": "demo", "k": 1}, other={"extends": "demo", "k": 2})
    monkeypatch.chdir(tmp_path)
    stages.use_profile("other")  # no params.yaml yet
    assert yaml.safe_load(Path("params.yaml").read_text()) == {"profile": "other", "k": 2}
    stages.use_profile("demo")
    assert Path("params.yaml").read_text() == (tmp_path / "profiles" / "demo.yaml").read_text()
    Path("params.yaml").write_text("profile: demo\nk: 3\n")  # e.g. dvc exp run -S k=3
    with pytest.raises(LicError, match="holds edits of your own"):
        stages.use_profile("other")
    assert Path("params.yaml").read_text() == "profile: demo\nk: 3\n"
    assert stages.main(["nosuch"]) == 2 and "no profile 'nosuch'" in capsys.readouterr().err
