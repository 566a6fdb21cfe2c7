"""Every option's --help says what it takes and what happens when it is left out."""

from __future__ import annotations

import json
import re
from typing import Any

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


def test_each_feature_group_has_every_command_typer_builds_in_its_order() -> None:
    """A feature's group builds each command when it is looked up (a run builds the one
    it runs): it still has every command, with the same options, in the same order."""
    import importlib

    from mdm.cli import COMMANDS, _load

    for name, (module, attribute) in COMMANDS.items():
        target = getattr(importlib.import_module(module), attribute)
        if not isinstance(target, typer.Typer):
            continue
        lazy, full = _load(name), typer.main.get_group(target)
        assert isinstance(lazy, click.Group) and lazy.list_commands(None) == list(full.commands)  # type: ignore[arg-type]
        for sub in full.commands:
            built, wanted = lazy.get_command(None, sub), full.commands[sub]  # type: ignore[arg-type]
            assert built is not None and built.name == wanted.name
            assert [p.opts for p in built.params] == [p.opts for p in wanted.params]
        assert [p.opts for p in lazy.params] == [p.opts for p in full.params]


def test_a_mistyped_command_in_a_group_is_answered_with_the_nearest(mdm: Any) -> None:
    error = json.loads(mdm("--json", "devices", "shw", code=2).stderr)
    assert error["error"] == "No such command 'shw'. Did you mean 'show'?"
