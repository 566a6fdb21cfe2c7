"""Option types shared by every command module, defined once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import click
import typer

from mdm import safefile, ui
from mdm.context import AppContext
from mdm.errors import InputError, Problem


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
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the --output file if it"
                                                       " exists.")]
ErrorsOpt = Annotated[Path | None, typer.Option(
    "--errors", help="Write every problem found to this CSV file (row, field, problem, hint).",
    show_default="none")]
ConcurrencyOpt = Annotated[int | None, typer.Option(
    "--concurrency", "-c", help="Devices worked on at once, directly and through each"
                                " station (which also keeps its own limit).",
    show_default="16")]
SelectorArg = Annotated[list[str] | None, typer.Argument(
    help="all, a serial or IMEI, or key=value[,key=value] (status, model, order,"
         " manufacturer, station, area, district, team, rank, worker_type, officer, group);"
         " several are OR-ed; one that selects no device is refused.", show_default=False)]
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


def deliver(body: str, output: Path | None, count: int, force: bool = False) -> None:
    """Print CSV/JSON on stdout, or write it safely to a new file (0600) and confirm."""
    if output is None:
        ui.write_out(body)
        return
    safefile.write(output, body.encode("utf-8"), force)
    exported(output, count)


def exported(output: Path | None, count: int) -> None:
    """Confirm the file an export's service wrote; to stdout, the service wrote it itself."""
    if output is not None:
        ui.success(f"{count} rows written to {output}")


@contextmanager
def problems_to(path: Path | None, source: Path | None = None) -> Iterator[None]:
    """Write every problem of the block's InputError to PATH as CSV (header only if none)."""
    if path is not None and source is not None and path.resolve() == source.resolve():
        raise InputError(f"--errors {path} is the file being imported",
                         "give another file name for the list of problems")
    if path is not None:
        safefile.check_target(path, force=True)  # a bad --errors path fails before any work
    from mdm import csvio  # only for a command that imports a file: not at start-up

    try:
        yield
    except InputError as exc:
        problems = exc.problems or [Problem("", exc.message, exc.hint)]
        if path is not None:
            safefile.write(path, csvio.problems_csv(problems).encode("utf-8"), force=True)
            exc.hint = "; ".join(filter(None, [exc.hint, f"every problem is listed in {path}"]))
        elif len(problems) > ui.PROBLEMS_PER_KIND:
            exc.hint = "; ".join(filter(None, [exc.hint, "--errors FILE lists every problem"
                                                         " as CSV"]))
        raise
    if path is not None:
        safefile.write(path, csvio.problems_csv([]).encode("utf-8"), force=True)
