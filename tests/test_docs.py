"""The docs: the site builds in strict mode (and a broken link fails it), the commands in the README
and the docs are valid command lines, the quoted profile times are what ``flows.estimate`` prints,
and no user doc offers tracker numbers or commit hashes as evidence."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"
USER_DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "reports" / "README.md",
             *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "reports" / "notebook").glob("*.md"))]


def build(root: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    return subprocess.run([str(MKDOCS), "build", "--strict", "-d", str(out)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_site_builds_in_strict_mode_with_the_generated_cli_reference(tmp_path: Path) -> None:
    proc = build(ROOT, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    for command in ("lic train", "lic latents make", "lic retrain", "--tcq-layout"):
        assert command in cli, command
    assert "lic datasets" not in cli  # a hidden alias


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    for name in ("docs", "mkdocs.yml", "README.md", "CONTRIBUTING.md", "CHANGELOG.md"):
        src = ROOT / name
        shutil.copytree(src, tmp_path / name) if src.is_dir() else shutil.copy(src, tmp_path / name)
    with open(tmp_path / "docs" / "data.md", "a") as fh:
        fh.write("\nSee [the missing page](no-such-page.md).\n")
    proc = build(tmp_path, tmp_path / "site")
    assert proc.returncode != 0 and "no-such-page.md" in proc.stdout + proc.stderr


def command_lines(text: str) -> list[str]:
    """The ``lic ...`` lines of a Markdown text's code blocks (continuations joined, comments cut)."""
    lines = []
    for block in re.findall(r"```(?:sh|console)?\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip().removeprefix("$ ")
            for part in re.split(r"&&|;|\|", line):
                part = part.strip().removesuffix("&").strip()
                if part.startswith("lic ") and "$(" not in part and "[" not in part:
                    lines.append(part)
    return lines


def parse(args: list[str]) -> dict:
    """Parse a command line against the Typer app, as ``lic`` would, without running it."""
    from lic.cli import app

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("lic", list(args))
    while hasattr(cmd, "resolve_command"):
        name, cmd, rest = cmd.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = cmd.make_context(name, rest, parent=ctx)
    return ctx.params


@pytest.mark.parametrize("doc", [d for d in USER_DOCS if d.name != "cli.md"], ids=lambda d: d.name)
def test_the_commands_in_the_docs_are_valid_command_lines(doc: Path) -> None:
    for line in command_lines(doc.read_text()):
        try:
            parse(shlex.split(line)[1:])
        except Exception as exc:  # noqa: BLE001 - any parse failure names the line
            pytest.fail(f"{doc.name}: {line!r}: {type(exc).__name__}: {exc}")


def test_the_command_check_can_fail() -> None:
    assert command_lines("```sh\nlic compress a.png -m m.ckpt -o b.lic --bogus  # x\n```") == \
        ["lic compress a.png -m m.ckpt -o b.lic --bogus"]
    with pytest.raises(Exception, match="No such option"):
        parse(["compress", "a.png", "-m", "m.ckpt", "-o", "b.lic", "--bogus"])


def test_the_quoted_profile_times_are_the_estimates() -> None:
    """``docs/profiles.md`` (and the README) quote ``python -m flows.estimate``: a profile's time
    cannot drift from its stage list."""
    from flows.estimate import total

    table = re.findall(r"^\| `([\w-]+)` \|.*\| ([^|]+) \|$", (ROOT / "docs" / "profiles.md").read_text(), flags=re.M)
    profiles = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))
    assert sorted(name for name, _ in table) == profiles
    for name, quoted in table:
        assert quoted.strip() == total(yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())), name
    readme = (ROOT / "README.md").read_text()
    for name in ("demo", "zoo"):
        assert total(yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())) in readme, name


def test_the_readme_is_a_landing_page() -> None:
    text = (ROOT / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:50])
    assert len(text.splitlines()) <= 160
    assert "make demo" in first_screen and "make zoo" in first_screen and "arXiv:2506.08662" in first_screen
    assert (ROOT / "params.yaml").read_text() == (ROOT / "profiles" / "demo.yaml").read_text()


def test_user_docs_cite_no_tracker_numbers_or_commit_hashes() -> None:
    commits = set(subprocess.run(["git", "log", "--format=%h %H"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    for doc in USER_DOCS:
        text = doc.read_text()
        assert not re.search(r"\bissues? \d+|\(#\d+\)", text, flags=re.I), doc.name
        hashes = {h for h in re.findall(r"\b[0-9a-f]{7,40}\b", text) if re.search(r"[a-f]", h) and re.search(r"\d", h)}
        cited = {h for h in hashes if any(c.startswith(h) for c in commits)}
        assert not cited, f"{doc.name} cites commits {sorted(cited)}"
        assert "../shared/" not in text and "this session" not in text.lower(), doc.name
