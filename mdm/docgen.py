"""Generate docs/cli.md (every command's --help) and docs/schema.md (from the migrations).

Run through cog, so the docs can't drift: `cog -r docs/cli.md docs/schema.md`, and CI runs
`cog --check`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def command_paths() -> Iterator[tuple[list[str], Any]]:
    """Yield (path, click command) for every command and group under `mdm`."""
    import typer.main

    from mdm.cli import app

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        for name in getattr(cmd, "list_commands", lambda _ctx: [])(None):
            yield from walk(cmd.get_command(None, name), path + [name])

    yield from walk(typer.main.get_command(app), [])


def cli_reference() -> str:
    """Return the Markdown reference of every command's --help."""
    from typer.testing import CliRunner

    from mdm.cli import app

    runner = CliRunner(env={"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"})
    parts = []
    for path, _cmd in command_paths():
        result = runner.invoke(app, [*path, "--help"], prog_name="mdm")
        text = "\n".join(line.rstrip() for line in result.stdout.strip().splitlines())
        parts.append(f"## mdm {' '.join(path)}".rstrip() + f"\n\n```\n{text}\n```\n")
    return "\n".join(parts)


def schema_reference() -> str:
    """Return the schema of a blank, fully migrated inventory as SQL."""
    from mdm.store import connect, schema

    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "schema.db")
        rows = schema.objects(db)
        migrations = schema.migrations(db)
        db.conn.close()
    out = ["Migrations, in order: " + ", ".join(f"`{m}`" for m in migrations) + ".\n"]
    for kind, name, sql in rows:
        if name.startswith("_sqlite"):
            continue
        out.append(f"### {kind} `{name}`\n\n```sql\n{sql.strip()}\n```\n")
    return "\n".join(out)


def policy_settings_reference() -> str:
    """Return the table of every policy setting, its type and range."""
    from mdm.policies.schema import APP_FIELDS, FIELDS

    def describe(spec: Any) -> str:
        kinds = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        words = {bool: "true/false", int: "number", str: "text", dict: "mapping"}
        text = "/".join(words.get(k, k.__name__) for k in kinds)
        if spec.choices:
            text = " \\| ".join(f"`{c}`" for c in spec.choices)
        if spec.minimum is not None or spec.maximum is not None:
            text += f" {spec.minimum if spec.minimum is not None else ''}–" \
                    f"{spec.maximum if spec.maximum is not None else ''}"
        return text

    rows = ["| setting | values | what it is |", "| --- | --- | --- |"]
    rows += [f"| `{k}` | {describe(v)} | {v.doc} |" for k, v in FIELDS.items()]
    rows += ["", "Each `apps.install` entry:", "", "| key | values | what it is |",
             "| --- | --- | --- |"]
    rows += [f"| `{k}` | {describe(v)} | {v.doc} |" for k, v in APP_FIELDS.items()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "100")
    print(cli_reference())
