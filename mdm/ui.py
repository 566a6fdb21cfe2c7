r"""All terminal output: the only module that imports rich.

Data goes to stdout (a table, or JSON with `--json`); messages, progress and errors go
to stderr, so `mdm ... --json | jq` always sees clean JSON. `-q` silences the success
lines and progress bars, never an error or a warning.

Text from outside is data. A surname, a serial, a device's stderr or a reason typed last
year may hold rich markup (`[/x]`, `[link=…]`) or terminal control (ESC sequences that
clear the screen or set the window title, a right-to-left override that reverses what
follows). Every value printed here goes through `literal()`, which shows control and
invisible characters as escapes (`\x1b`, `\n`, `\u202e`, as Python's repr does), and
reaches rich as a `Text`, which rich never parses as markup. Only this module's own fixed
strings carry markup. JSON stays exact data: it is valid JSON whose strings decode to the
very values stored, with the same characters written as `\u` escapes.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mdm.errors import ExitCode, MdmError, Problem


@dataclass
class _Settings:
    quiet: bool = False


_settings = _Settings()


def configure(quiet: bool = False) -> None:
    """Set this run's output options (the root command calls this once per run)."""
    _settings.quiet = quiet


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    """Write one unprintable character as a Python-style escape."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def literal(value: object) -> str:
    """Return a value as text that prints exactly as it reads.

    Every character Python's repr would escape (C0 and C1 controls, DEL, bidi and other
    format characters, line separators, unusual spaces, lone surrogates) is written as
    an escape, so nothing in it can move the cursor, set a title or reorder the line.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


# Candidates for escaping in whole lines of text: all but printable ASCII, tab, LF and CRLF.
_LINES_SUSPECT = re.compile(r"\r(?!\n)|[^\x20-\x7e\t\n\r]")


def _literal_lines(text: str) -> str:
    """Like `literal`, but keep line ends and tabs: for CSV or TSV shown on a terminal."""
    return _LINES_SUSPECT.sub(lambda m: m[0] if m[0].isprintable() else _escape(m[0]), text)


def _text(value: object) -> Text:
    """Return a value as rich Text: literal, and never read as markup or emoji."""
    return Text(literal(value))


_NON_ASCII_OR_DEL = re.compile(r"[^\x00-\x7e]")  # json.dumps has escaped C0 already


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code > 0xFFFF:  # JSON spells these as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def json_text(data: object, indent: int | None = 2) -> str:
    """Return data as JSON that decodes to the same values and prints no control character.

    json.dumps escapes C0 controls; DEL, C1 controls, bidi overrides and the like are
    escaped here too (still valid JSON, still the exact value once decoded).
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    if text.isascii() and "\x7f" not in text:
        return text
    return _NON_ASCII_OR_DEL.sub(_json_escape, text)


def _out() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _err() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def emit_json(data: object) -> None:
    """Write data as JSON on stdout."""
    sys.stdout.write(json_text(data) + "\n")


def json_rows_text(data: object, indent: str = "") -> str:
    """Return data as JSON (as `json_text`), each row of a list of objects on one line.

    For results with tens of thousands of rows: Python's JSON encoder is several times
    faster without indentation, and one row a line still reads well and greps well.
    """
    inner = indent + "  "
    if isinstance(data, Mapping) and data:
        return "{\n" + ",\n".join(f"{inner}{json_text(str(k), None)}: {json_rows_text(v, inner)}"
                                  for k, v in data.items()) + f"\n{indent}}}"
    if isinstance(data, list) and data and all(isinstance(x, Mapping) for x in data):
        return "[\n" + ",\n".join(inner + json_text(x, None) for x in data) + f"\n{indent}]"
    return json_text(data, None)


def emit_json_rows(data: object) -> None:
    """Write data as JSON on stdout, each row of a list of objects on one line."""
    sys.stdout.write(json_rows_text(data) + "\n")


def write_out(text: str) -> None:
    """Write raw text on stdout and flush it, so a failed write is known at once."""
    write_text(text)
    sys.stdout.flush()


def write_text(text: str) -> None:
    """Write raw text (CSV, a fingerprint) on stdout: exact if piped, made visible on a terminal."""
    sys.stdout.write(_literal_lines(text) if _is_terminal(sys.stdout) else text)


def _cell(value: object) -> Text:
    if value is None:
        return Text("")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, Mapping | list):
        return _text(json.dumps(value, ensure_ascii=False, default=str))
    return _text(value)


def _title(title: str) -> Text | None:
    return _text(title) if title else None


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print rows as a table with the given columns (every cell printed literally)."""
    t = Table(title=_title(title), show_lines=False)
    for c in columns:
        t.add_column(_text(c))
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns), style=None)
    _out().print(t)
    if not rows:
        info("(none)")


def record(data: Mapping[str, Any], title: str = "") -> None:
    """Print one record as a two-column table (every value printed literally)."""
    t = Table(title=_title(title), show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in data.items():
        t.add_row(_text(k), _cell(v))
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
        _out().print(_text(data))


def heading(text: str, *lines: str) -> None:
    """Print a heading line (bold on a terminal) and any plain lines under it on stdout."""
    console = _out()
    console.print(Text(literal(text), style="bold"))
    for line in lines:
        console.print(_text(line))


def stdout_is_terminal() -> bool:
    """Say whether stdout is a terminal (a person reading) rather than a pipe or a file."""
    return _is_terminal(sys.stdout)


def _tsv_cell(value: object) -> str:
    if type(value) is str:  # the common case first: tens of thousands of cells
        return value if value.isprintable() else literal(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return literal(value)


def tsv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Return rows as tab-separated lines with a header: one row a line, every value literal.

    A tab, a line end or a control character inside a value is written as a visible
    escape (as `literal` does), so `cut`, `sort` and `awk` see one row per line.
    """
    lines = ["\t".join(columns)]
    lines += ["\t".join([_tsv_cell(row.get(c)) for c in columns]) for row in rows]
    return "\n".join(lines) + "\n"


def info(message: str) -> None:
    """Print a message for the person at the terminal (stderr), literally."""
    _err().print(_text(message))


def success(message: str) -> None:
    """Print a short confirmation (stderr), literally; `-q` silences it."""
    if _settings.quiet:
        return
    console = _err()
    console.print("[green]✓[/green] ", end="")
    console.print(_text(message))


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


def error_object(exc: MdmError) -> dict[str, Any]:
    """Describe an error as data: what, where, what to do, and every problem."""
    places = {p.where for p in exc.problems}
    where = exc.where or (places.pop() if len(places) == 1 else None)
    hint = exc.hint or (exc.problems[0].hint if len(exc.problems) == 1 else "")
    return {"error": exc.message, "where": where or None, "what_to_do": hint or None,
            "exit_code": int(exc.code), "problems": [p.as_dict() for p in exc.problems]}


def error(exc: MdmError, as_json: bool = False) -> None:
    """Print an error with every problem and the hint on stderr (one JSON object with --json)."""
    if as_json:
        sys.stderr.write(json_text(error_object(exc), indent=None) + "\n")
        return
    console = _err()
    console.print("[bold red]error:[/bold red] ", end="")
    console.print(_text(exc.message))
    if exc.code == ExitCode.PARTIAL and exc.problems:  # failed devices: a table
        t = Table(show_lines=False)
        for column in ("device", "failure", "what happened", "what to do"):
            t.add_column(column, overflow="fold")
        for p in exc.problems:
            t.add_row(_text(p.where.removeprefix("device ")), _text(p.field),
                      _text(p.message), _text(p.hint))
        console.print(t)
    else:
        for line in problem_lines(exc.problems):
            console.print(_text(line))
    if exc.hint:
        console.print("[yellow]what to do:[/yellow] ", end="")
        console.print(_text(exc.hint))


class _Bar:
    """A progress bar on stderr that learns its total when the work is known."""

    def __init__(self, description: str, enabled: bool) -> None:
        self._description = literal(description)
        self._enabled = enabled and not _settings.quiet
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

        self._bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
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
