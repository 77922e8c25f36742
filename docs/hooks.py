"""mkdocs hooks: the command-line reference is generated from the Typer app at build time, so it
cannot drift from ``lic --help``."""

from __future__ import annotations

import re

import typer
from mkdocs.structure.files import File, Files
from typer.cli import get_docs_for_click

from lic.cli import app

HIDDEN = ("datasets",)  # hidden aliases: their commands are documented under their current names


def cli_reference() -> str:
    """Markdown of every command's usage, arguments and options, as ``lic --help`` gives them."""
    command = typer.main.get_command(app)
    ctx = command.make_context("lic", [], resilient_parsing=True)
    text = get_docs_for_click(obj=command, ctx=ctx, name="lic", title="Command-line reference")
    for name in HIDDEN:
        text = re.sub(rf"^\* `{name}`:.*\n", "", text, flags=re.M)
        text = re.sub(rf"^## `lic {name}`.*?(?=^## `lic (?!{name})|\Z)", "", text, flags=re.M | re.S)
    intro = ("Generated from the program itself when the docs are built (`lic --help` shows the same). "
             "A bad option or argument prints one line and exits with code 2.\n\n")
    return text.replace("\n\n", "\n\n" + intro, 1)


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - mkdocs' hook signature
    files.append(File.generated(config, "cli.md", content=cli_reference()))
    return files
