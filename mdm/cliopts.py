"""Option types shared by every command module, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).",
                                               show_default="none")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="csv or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", show_default="stdout",
                                                help="Write to this file instead of stdout.")]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", "-c", help="Devices worked on at once.", show_default="16")]
SelectorArg = Annotated[list[str] | None, typer.Argument(
    help="all, a serial or IMEI, or key=value[,key=value] (status, model, order,"
         " manufacturer, station, area, district, team, rank, worker_type, officer, group);"
         " several are OR-ed; one that selects no device is refused.", show_default=False)]
InputFile = Annotated[Path, typer.Argument(help="A CSV file.", show_default=False)]


def app_context(ctx: typer.Context) -> AppContext:
    """Return the AppContext the root callback built."""
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    """Say whether to print JSON: the command's --json or the global one."""
    return flag or app_context(ctx).json


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
