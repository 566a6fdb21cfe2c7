"""All terminal output: the only module that imports rich.

Data goes to stdout (a table, or JSON with `--json`); messages, progress and errors go
to stderr, so `mdm ... --json | jq` always sees clean JSON.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from mdm.errors import ExitCode, MdmError, Problem


def _out() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _err() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def emit_json(data: object) -> None:
    """Write data as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_text(text: str) -> None:
    """Write raw text (CSV, a fingerprint) on stdout."""
    sys.stdout.write(text)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print rows as a table with the given columns."""
    t = Table(title=title or None, show_lines=False)
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns), style=None)
    _out().print(t)
    if not rows:
        info("(none)")


def record(data: Mapping[str, Any], title: str = "") -> None:
    """Print one record as a two-column table."""
    t = Table(title=title or None, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in data.items():
        t.add_row(k, _cell(v))
    _out().print(t)


def render(data: object, as_json: bool, columns: Sequence[str] | None = None,
           title: str = "") -> None:
    """Print data as JSON, or as a table (a list of rows) or a record (one mapping)."""
    if as_json:
        emit_json(data)
    elif isinstance(data, list):
        table(data, columns or (list(data[0]) if data else []), title)
    elif isinstance(data, Mapping):
        record(data, title)
    else:
        _out().print(str(data))


def info(message: str) -> None:
    """Print a message for the person at the terminal (stderr)."""
    _err().print(message, markup=False)


def success(message: str) -> None:
    """Print a short confirmation (stderr)."""
    _err().print("[green]✓[/green] ", end="")
    _err().print(message, markup=False)


PROBLEMS_PER_KIND = 20


def problem_lines(problems: Sequence[Problem]) -> list[str]:
    """List problems as lines: the first 20 of each kind (column), then a count of the rest."""
    shown: Counter[str] = Counter()
    lines = []
    for p in problems:
        shown[p.field] += 1
        if shown[p.field] <= PROBLEMS_PER_KIND:
            lines.append("  - " + str(p))
    for kind, count in shown.items():
        if count > PROBLEMS_PER_KIND:
            about = f" with {kind}" if kind else ""
            lines.append(f"  … and {count - PROBLEMS_PER_KIND:,} more{about}")
    return lines


def error(exc: MdmError) -> None:
    """Print an error with every problem and the hint, on stderr."""
    console = _err()
    console.print("[bold red]error:[/bold red] ", end="")
    console.print(exc.message, markup=False)
    if exc.code == ExitCode.PARTIAL and exc.problems:  # failed devices: a table
        t = Table(show_lines=False)
        for column in ("device", "failure", "what happened", "what to do"):
            t.add_column(column, overflow="fold")
        for p in exc.problems:
            t.add_row(p.where.removeprefix("device "), p.field, p.message, p.hint)
        console.print(t)
    else:
        for line in problem_lines(exc.problems):
            console.print(line, markup=False)
    if exc.hint:
        console.print("[yellow]what to do:[/yellow] ", end="")
        console.print(exc.hint, markup=False)


class _Bar:
    """A progress bar on stderr that learns its total when the work is known."""

    def __init__(self, description: str, enabled: bool) -> None:
        self._description = description
        self._enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if not self._enabled or total <= 1 or self._bar is not None:
            return
        from rich.progress import (  # only fleet commands need it: keep it off start-up
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), console=_err(),
                             transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self._description, total=total)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def progress(description: str, enabled: bool = True) -> Iterator[_Bar]:
    """Show a progress bar on stderr while the block runs (call .start(total), .advance())."""
    bar = _Bar(description, enabled)
    try:
        yield bar
    finally:
        bar.stop()
