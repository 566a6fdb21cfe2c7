"""Every option's --help says what it takes and what happens when it is left out."""

from __future__ import annotations

import re

import click
import typer.main
from click.testing import CliRunner

from mdm.cli import app
from mdm.docgen import command_paths


def _help_lines(root: click.Command, path: list[str]) -> str:
    result = CliRunner(env={"COLUMNS": "400", "TERM": "dumb", "NO_COLOR": "1"}).invoke(
        root, [*path, "--help"], prog_name="mdm")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_option_has_help_with_its_default_and_allowed_values() -> None:
    missing = []
    root = typer.main.get_command(app)  # built once: every --help below reuses it
    for path, cmd in command_paths():
        text = _help_lines(root, path)
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.name == "help":
                continue
            name = f"mdm {' '.join(path)} {param.opts[0]}".replace("  ", " ")
            names = "|".join(re.escape(o) for o in param.opts + param.secondary_opts)
            line = next((ln for ln in text.splitlines()
                         if re.match(rf"[│\s*]*({names})\b", ln)), "")
            if not (param.help or "").strip():
                missing.append(f"{name}: no help")
            elif param.is_flag:
                continue  # a flag is off unless given
            elif not re.search(r"\[default: [^\]]+\]|\[required\]|\(default: ", line):
                missing.append(f"{name}: no default shown")
            if isinstance(param.type, click.Choice) and not all(
                    str(c) in line for c in param.type.choices):
                missing.append(f"{name}: allowed values not shown")
    assert missing == []
