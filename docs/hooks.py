"""The command-line reference, ``docs/cli.md``, generated from the Typer app: committed, so that it
reads in the repository too, and checked at every docs build (and by the tests), so that it cannot
drift from ``lic --help``. Regenerate it with ``python docs/hooks.py``."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from mkdocs.exceptions import PluginError
from typer.cli import get_docs_for_click

from lic.cli import app

CLI_MD = Path(__file__).with_name("cli.md")
HIDDEN = ("datasets",)  # hidden aliases: their commands are documented under their current names


def cli_reference() -> str:
    """Markdown of every command's usage, arguments and options, as ``lic --help`` gives them."""
    command = typer.main.get_command(app)
    ctx = command.make_context("lic", [], resilient_parsing=True)
    text = get_docs_for_click(obj=command, ctx=ctx, name="lic", title="Command-line reference")
    for name in HIDDEN:
        text = re.sub(rf"^\* `{name}`:.*\n", "", text, flags=re.M)
        text = re.sub(rf"^## `lic {name}`.*?(?=^## `lic (?!{name})|\Z)", "", text, flags=re.M | re.S)
    intro = ("Generated from the program itself (`python docs/hooks.py`; `lic --help` shows the same). "
             "A bad option or argument prints one line and exits with code 2. Every option can also be set "
             "by an environment variable named after the command and the option: `LIC_TRAIN_STEPS=200` for "
             "`lic train --steps 200`, `LIC_LATENTS_MAKE_PATCHES=64` for `lic latents make --patches 64`; "
             "an option on the command line wins.\n\n")
    return text.replace("\n\n", "\n\n" + intro, 1)


def on_pre_build(config) -> None:  # noqa: ANN001 - mkdocs' hook signature
    if not CLI_MD.is_file() or CLI_MD.read_text() != cli_reference():
        raise PluginError("docs/cli.md is not what lic --help says: regenerate it with python docs/hooks.py")


if __name__ == "__main__":
    CLI_MD.write_text(cli_reference())
