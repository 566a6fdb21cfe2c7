"""Option types shared by every command module, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from mdm import ui
from mdm.context import AppContext
from mdm.errors import InputError


def _mark_json(ctx: typer.Context, value: bool) -> bool:
    """Remember --json for the whole run, so the error boundary prints results as JSON too."""
    if value and isinstance(ctx.find_root().obj, AppContext):
        ctx.find_root().obj.json = True
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.",
                                       callback=_mark_json)]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="csv or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write to this file instead of stdout.")]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", "-c", help="Devices worked on at once [default: 16].", show_default=False)]
SelectorArg = Annotated[list[str] | None, typer.Argument(
    help="all, a serial, or key=value[,key=value] (status, model, order, station, area,"
         " team, rank, worker_type, officer); several are OR-ed.", show_default=False)]
ListFormatOpt = Annotated[str | None, typer.Option(
    "--format", click_type=click.Choice(ui.FORMATS, case_sensitive=False), show_default=False,
    help="table, tsv, csv, json (one array) or jsonl (one object a line)"
         " (default: table on a terminal, tsv when piped; --json is --format json).")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, show_default=False,
    help=f"Show at most N rows (default: {ui.PAGE} in a table on a terminal, else all).")]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every row, even on a terminal.")]
InputFile = Annotated[Path, typer.Argument(help="A CSV file.", show_default=False)]


def app_context(ctx: typer.Context) -> AppContext:
    """Return the AppContext the root callback built."""
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    """Say whether to print JSON: the command's --json or the global one."""
    return flag or app_context(ctx).json


def list_format(ctx: typer.Context, fmt: str | None, json: bool) -> str | None:
    """Resolve a list's --format and --json (the same as --format json); None: choose."""
    if wants_json(ctx, json):
        if fmt and fmt.lower() != "json":
            raise InputError(f"--json and --format {fmt} ask for different things",
                             "give one of them")
        return "json"
    return fmt.lower() if fmt else None


def row_limit(limit: int | None, all_: bool) -> int | None:
    """Resolve --limit and --all into a listing's limit (None: the format's default)."""
    if all_ and limit:
        raise InputError("--all and --limit ask for different things", "give one of them")
    return ui.ALL if all_ else limit


def export_format(fmt: str) -> str:
    """Validate an export format."""
    if fmt not in ("csv", "json"):
        raise InputError(f"--format {fmt!r} is not supported", "use csv or json")
    return fmt


def deliver(body: str, output: Path | None, count: int) -> None:
    """Write an export to stdout, or to a file with a confirmation."""
    if output is None:
        ui.write_text(body)
    else:
        output.write_text(body, encoding="utf-8", newline="")
        ui.success(f"{count} rows written to {output}")
