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

import contextlib
import io
import json
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

from mdm import plaintext
from mdm.errors import ExitCode, MdmError, Problem

if TYPE_CHECKING:  # rich is imported where it draws: a piped list never loads it
    from rich.console import Console
    from rich.text import Text


@dataclass
class _Settings:
    """The run's output settings (`--quiet`)."""

    quiet: bool = False


_settings = _Settings()


def prepare_streams() -> None:
    """Let any character be written, whatever the locale: where stdout or stderr cannot
    encode one (a latin-1 or ASCII locale), it is written as an escape (`\\u2192`), never
    an error; a COLUMNS that is no number (rich reads it) is ignored."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding not in ("utf8", "utf_8") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError):  # a stream already closed
                stream.reconfigure(errors="backslashreplace")
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.isascii() and columns.isdigit()):
        del os.environ["COLUMNS"]


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
    from rich.text import Text

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


def _json_clean(text: str) -> str:
    """Escape what json.dumps leaves raw (DEL, C1, bidi controls): still the same value."""
    if text.isascii() and "\x7f" not in text:
        return text
    return _NON_ASCII_OR_DEL.sub(_json_escape, text)


def json_text(data: object, indent: int | None = 2) -> str:
    """Return data as JSON that decodes to the same values and prints no control character.

    json.dumps escapes C0 controls; DEL, C1 controls, bidi overrides and the like are
    escaped here too (still valid JSON, still the exact value once decoded).
    """
    return _json_clean(json.dumps(data, indent=indent, ensure_ascii=False, default=str))


def _out() -> Console:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def _err() -> Console:
    from rich.console import Console

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


class Alarm(str):
    """A table value that must stand out (bold red on a terminal): an overdue deadline."""


def _cell(value: object) -> Text:
    from rich.text import Text

    text, alarm = _plain_cell(value)
    cell = Text(text)
    if alarm:
        cell.stylize("bold red")
    return cell


def _title(title: str) -> Text | None:
    return _text(title) if title else None


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print rows as a table with the given columns (every cell printed literally)."""
    drawn = _plain_table(rows, columns, title)
    if drawn is not None:
        sys.stdout.write(drawn)
    else:
        _out().print(_rich_table(rows, columns, title))
    if not rows:
        info("(none)")


def _rich_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                title: str) -> Any:
    from rich.table import Table

    t = Table(title=_title(title), show_lines=False)
    for c in columns:
        t.add_column(_text(c))
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns), style=None)
    return t


def _plain_cell(value: object) -> tuple[str, bool]:
    """A table cell's text, made literal, and whether it is printed bold red."""
    if value is None:
        return "", False
    if isinstance(value, Alarm):
        return literal(str(value)), True
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, Mapping | list):
        return literal(json.dumps(value, ensure_ascii=False, default=str)), False
    return literal(value), False


def _plain_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str,
                 to: plaintext.Target | None = None) -> str | None:
    """The table as rich would draw it on stdout, drawn without rich; None where it can't be."""
    to = to or plaintext.target(sys.stdout)
    if to is None:
        return None
    return plaintext.table([literal(c) for c in columns],
                           [[_plain_cell(row.get(c)) for c in columns] for row in rows],
                           literal(title) if title else "", to)


def record(data: Mapping[str, Any], title: str = "") -> None:
    """Print one record as a two-column table (every value printed literally)."""
    from rich.table import Table

    t = Table(title=_title(title), show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")  # a long id or date folds, never cut with …
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
    drawn = _plain_heading(text, lines)
    if drawn is not None:
        sys.stdout.write(drawn)
        return
    from rich.text import Text

    console = _out()
    console.print(Text(literal(text), style="bold"))
    for line in lines:
        console.print(_text(line))


def _plain_heading(text: str, lines: Sequence[str],
                   to: plaintext.Target | None = None) -> str | None:
    to = to or plaintext.target(sys.stdout)
    if to is None:
        return None
    drawn = [plaintext.line(literal(text), to, bold=True),
             *(plaintext.line(literal(line), to) for line in lines)]
    return None if None in drawn else "".join(d for d in drawn if d is not None)


def stdout_is_terminal() -> bool:
    """Say whether stdout is a terminal (a person reading) rather than a pipe or a file."""
    return _is_terminal(sys.stdout)


def tsv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Return rows as tab-separated lines with a header: one row a line, every value literal.

    A tab, a line end or a control character inside a value is written as a visible
    escape (as `literal` does), so `cut`, `sort` and `awk` see one row per line.
    """
    return "\t".join(columns) + "\n" + "".join(
        _tsv_lines(list(rows[i:i + _CHUNK]), columns) for i in range(0, len(rows), _CHUNK))


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
        from rich.table import Table

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


# -- lists ------------------------------------------------------------------------------

FORMATS = ("table", "tsv", "csv", "json", "jsonl")
PAGE = 50  # rows a table shows on a terminal unless --limit or --all
ALL = 0  # limit=ALL: every row
_CHUNK = 500  # rows written (or drawn as one table) at a time
Row = Mapping[str, Any] | tuple[Any, ...]  # a mapping, or the values of the columns
_GAP = 2  # between two columns of a table: one space of padding, one of divider
_FOLD_FROM = 16  # a column folds only when wider than this, and never below it


def listing(rows: Iterable[Row], columns: Sequence[str], *,
            key_columns: Collection[str] = (), fmt: str | None = None,
            limit: int | None = None, total: int | Callable[[], int] | None = None,
            noun: str = "rows", title: str = "", drop: Sequence[str] = (),
            tail: bool = False, every_column: str = "--format tsv") -> int:
    """Print a list of rows, streamed, in the format asked for; return how many were printed.

    The one way every `mdm … list` prints, in one call::

        ui.listing(service.iter_officers(db, filters), COLUMNS, key_columns=("officer_id",),
                   fmt=list_format(ctx, fmt, json), limit=row_limit(limit, all_),
                   total=lambda: service.count_officers(db, filters), noun="officers")

    - `rows`: any iterable of mappings, best a lazy one (`Database.iter_query`): it is read
      one row at a time and never held whole, and only as far as the limit needs. A row
      may also be a tuple of the values of `columns`, in order (what a cursor yields:
      several times cheaper for tens of thousands of rows); JSON then shows `columns`.
    - `fmt`: None picks `table` when stdout is a terminal, else `tsv`. `table` is a rich
      table sized to the terminal: `key_columns` (ids, serials, collar numbers, dates) are
      never cut or wrapped; other columns fold, and when even that does not fit, columns
      are left out (`drop` first, in its order, then from the right) and a note on stderr
      names them. `tsv` and `csv` have a header line and one line per row; `json` is one
      array, `jsonl` one object per line. Tables, TSV and CSV show `columns`; JSON shows
      every field of each row, as exact data. TSV and CSV write every value as `literal`
      does (a tab, a line end or a control character as a visible escape, so one row is
      one line); CSV cells are also neutralised for spreadsheets (`csvio.neutralise`).
    - `limit`: at most this many rows; None means a page (`PAGE`) for a table and every
      row otherwise; `ALL` means every row. `tail=True` keeps the last rows instead of
      the first (for logs, oldest first); the whole iterable is then read and counted.
    - `every_column`: what to run to see the columns a narrow table leaves out (a `show`
      command, which has no --format, says `--json`).
    - `total`: how many rows there are in all (a number, or a function called only when
      the list was cut short). When rows were left out, stderr says
      "showing 50 of 45,000 officers; --all for every row" (`-q` silences it).
    """
    fmt = pick_format(fmt)
    if fmt not in FORMATS:
        raise ValueError(f"no list format {fmt!r}")
    if limit is None:
        limit = PAGE if fmt == "table" else ALL
    stream: Iterator[Row] = iter(rows)
    more = False
    if limit and tail:
        kept: deque[Row] = deque(maxlen=limit)
        seen = 0
        for row in stream:
            kept.append(row)
            seen += 1
        stream, more = iter(kept), seen > limit
        total = seen if total is None else total
    elif limit:
        stream = _Counted(stream, limit)
    writer = {"table": _write_table, "tsv": _write_tsv, "csv": _write_csv,
              "json": _write_json, "jsonl": _write_jsonl}[fmt]
    try:
        if fmt == "table":
            writer = partial(_write_table, every_column=every_column)
        shown, notes = writer(stream, columns, set(key_columns), title, drop)
        if isinstance(stream, _Counted):
            more = stream.more()
        sys.stdout.flush()
    except BrokenPipeError:  # `mdm … | head`: the reader has all it wants
        _quiet_stdout()
        return 0
    if more or (isinstance(total, int) and total > shown):
        count = total() if callable(total) else total
        notes.append(f"showing {shown:,} of {count:,} {noun}; --all for every row"
                     if count is not None else
                     f"showing the {'last' if tail else 'first'} {shown:,} {noun};"
                     " --all for every row")
    if fmt == "table" and not shown:
        notes.append(f"no {noun}")
    for note in notes if not _settings.quiet else ():
        info(note)
    return shown


def pick_format(fmt: str | None) -> str:
    """Return the list format to print: the one asked for, else table on a terminal, else tsv."""
    return fmt or ("table" if _is_terminal(sys.stdout) else "tsv")



def _values(row: Row, columns: Sequence[str]) -> Sequence[Any]:
    """A row's values of these columns, in order (a tuple row holds just those)."""
    return row if row.__class__ is tuple else [row.get(c) for c in columns]  # type: ignore


class _Counted(Iterator[Row]):
    """Pass on at most `limit` rows; then say whether the source had more."""

    def __init__(self, source: Iterator[Row], limit: int) -> None:
        self._source, self._left = source, limit

    def __next__(self) -> Row:
        if self._left <= 0:
            raise StopIteration
        self._left -= 1
        return next(self._source)

    def more(self) -> bool:
        return self._left <= 0 and next(self._source, None) is not None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the exit flush finds no closed pipe."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _plain(value: object) -> str:
    """Write one value for TSV or CSV: literal text, true/false, JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return literal(_COMPACT.encode(value))
    return literal(value)


_COMPACT = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))

Notes = list[str]


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, _CHUNK)):
        yield chunk


# TSV lines that need no escaping: printable ASCII, their own tabs and line ends only.
_TSV_ODD = re.compile(r"[^\t\n\x20-\x7e]")
_TSV_PLAIN = bytes([9, 10, *range(0x20, 0x7F)])


def _plain_ascii(text: str) -> bool:
    """Say whether text holds only printable ASCII, tabs and line ends (C loops only)."""
    return text.isascii() and not text.encode("ascii").translate(None, _TSV_PLAIN)


def _tsv_join(values: Sequence[Any]) -> str:
    """Join values with tabs, each as `_plain` would write it if it is plain text already."""
    try:
        return "\t".join(values)  # every value is text: the common case, done in C
    except TypeError:
        return "\t".join(["" if v is None else v if v.__class__ is str else _plain(v)
                          for v in values])


def _tsv_lines(chunk: list[Row], columns: Sequence[str]) -> str:
    """TSV lines for a chunk of rows, checked as a whole; a line that needs escaping is redone."""
    lines = [_tsv_join(_values(row, columns)) for row in chunk]
    text = "\n".join(lines) + "\n"
    if _plain_ascii(text) and text.count("\n") == len(lines) \
            and text.count("\t") == len(lines) * (len(columns) - 1):
        return text
    tabs = len(columns) - 1
    return "".join((line if _TSV_ODD.search(line) is None and "\n" not in line
                    and line.count("\t") == tabs
                    else "\t".join([_plain(v) for v in _values(row, columns)])) + "\n"
                   for row, line in zip(chunk, lines, strict=True))


def _write_tsv(rows: Iterator[Row], columns: Sequence[str], keys: set[str],
               title: str, drop: Sequence[str]) -> tuple[int, Notes]:
    write, shown = sys.stdout.write, 0
    write("\t".join(columns) + "\n")
    for chunk in _chunks(rows):
        write(_tsv_lines(chunk, columns))
        shown += len(chunk)
    return shown, []


def _write_csv(rows: Iterator[Row], columns: Sequence[str], keys: set[str],
               title: str, drop: Sequence[str]) -> tuple[int, Notes]:
    import csv

    from mdm.csvio import neutralise

    buffer = io.StringIO()
    writer, shown = csv.writer(buffer, lineterminator="\r\n"), 0
    writer.writerow(columns)
    for chunk in _chunks(rows):
        writer.writerows([neutralise(_plain(v)) for v in _values(row, columns)]
                         for row in chunk)
        sys.stdout.write(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
        shown += len(chunk)
    sys.stdout.write(buffer.getvalue())
    return shown, []


def _json_row(row: Row, columns: Sequence[str]) -> str:
    """One row as compact JSON (the encoder takes a dict as it is, not any mapping)."""
    data = row if type(row) is dict else dict(zip(columns, row, strict=True)) \
        if isinstance(row, tuple) else dict(row)
    return _json_clean(_COMPACT.encode(data))


def _write_json(rows: Iterator[Row], columns: Sequence[str], keys: set[str],
                title: str, drop: Sequence[str]) -> tuple[int, Notes]:
    write, shown = sys.stdout.write, 0
    for chunk in _chunks(rows):
        write(("[\n" if not shown else ",\n")
              + ",\n".join(_json_row(row, columns) for row in chunk))
        shown += len(chunk)
    write("\n]\n" if shown else "[]\n")
    return shown, []


def _write_jsonl(rows: Iterator[Row], columns: Sequence[str], keys: set[str],
                 title: str, drop: Sequence[str]) -> tuple[int, Notes]:
    write, shown = sys.stdout.write, 0
    for chunk in _chunks(rows):
        write("".join(_json_row(row, columns) + "\n" for row in chunk))
        shown += len(chunk)
    return shown, []


@dataclass
class _Col:
    """One column of a table being drawn: its name, whether it keys the rows, its widths."""

    name: str
    key: bool
    least: int  # narrowest it may be drawn (a key column: its longest value)
    most: int  # as wide as it would like to be
    width: int = 0


def _head(name: str, width: int) -> Text:
    """A column's heading, its words (split at _) put on as many lines as the width needs."""
    from rich.text import Text

    lines: list[str] = []
    for word in name.split("_"):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += "_" + word
        else:
            lines.append(word)
    return Text("\n".join(lines), style="bold")


def _layout(columns: Sequence[str], keys: set[str], cells: list[list[Text]], width: int,
            drop: Sequence[str]) -> tuple[list[_Col], list[str]]:
    """Choose the columns and their widths: keys whole, long text folded, the rest left out.

    A key column is never narrower than its longest value. Short values (a rank, a
    station) are shown whole or not at all: only a column wider than `_FOLD_FROM` folds,
    and never below it. Columns are left out (`drop` first, then from the right) until
    the rest fit; spare width then goes to folded columns, and last to key headings.
    """
    cols = []
    for i, name in enumerate(columns):
        longest = max((row[i].cell_len for row in cells), default=0)
        word = max(len(w) for w in name.split("_"))
        if name in keys:
            cols.append(_Col(name, True, max(longest, word), max(longest, len(name))))
        else:
            most = max(longest, len(name), 1)
            cols.append(_Col(name, False, min(most, max(word, _FOLD_FROM)), most))
    order = [n for n in drop if n in columns and n not in keys]
    order += [c.name for c in reversed(cols) if not c.key and c.name not in order]
    dropped: list[str] = []

    def need() -> int:
        return sum(c.width for c in cols) + _GAP * (len(cols) - 1)

    for c in cols:
        c.width = c.least
    while need() > width and order:
        dropped.append(order.pop(0))
        cols = [c for c in cols if c.name != dropped[-1]]
    for growing_keys in (False, True):  # share what is left, evenly, up to natural widths
        while (spare := width - need()) > 0:
            growing = [c for c in cols if c.key == growing_keys and c.width < c.most]
            if not growing:
                break
            for c in growing[:spare]:
                c.width += 1
    return cols, dropped


def _write_table(rows: Iterator[Row], columns: Sequence[str], keys: set[str],
                 title: str, drop: Sequence[str],
                 every_column: str = "--format tsv") -> tuple[int, Notes]:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    shown, notes, first = 0, [], True
    cols: list[_Col] = []
    index = {name: i for i, name in enumerate(columns)}
    for chunk in _chunks(rows):
        cells = [[_cell(v) for v in _values(row, columns)] for row in chunk]
        if first:
            cols, dropped = _layout(columns, keys, cells, _out().width, drop)
            if dropped:
                notes.append("not shown, to fit the terminal: " + ", ".join(dropped)
                             + f" ({every_column} shows every column)")
        for c in cols:  # a later key value longer than the first page's: widen, never cut
            if c.key:
                c.width = max([c.width] + [row[index[c.name]].cell_len for row in cells])
        t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  show_header=first,
                  title=_title(title) if first else None, title_justify="left")
        for c in cols:
            t.add_column(_head(c.name, c.width), width=c.width, no_wrap=c.key,
                         overflow="fold")
        for row in cells:
            t.add_row(*(row[index[c.name]] for c in cols))
        need = sum(c.width for c in cols) + _GAP * (len(cols) - 1)
        console = _out()
        if need > console.width:  # key columns alone are wider: let the terminal wrap
            console = Console(file=sys.stdout, highlight=False, width=need)
        console.print(t)
        shown += len(chunk)
        first = False
    return shown, notes


# -- progress ---------------------------------------------------------------------------

class _Bar:
    """A progress bar on stderr that learns its total when the work is known.

    It appears only on a terminal, only without -q, and only once the work has taken
    longer than `delay` seconds, so quick runs print nothing. Work in phases calls
    `start` again for each (`start(n, "writing")`).
    """

    def __init__(self, description: str, enabled: bool, delay: float) -> None:
        self._description = literal(description)
        self._enabled = enabled and not _settings.quiet and _is_terminal(sys.stderr)
        self._delay = delay
        self._started = time.monotonic()
        self._label = self._description
        self._total = 0
        self._done = 0
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, phase: str = "") -> None:
        if not self._enabled or total <= 1:
            return
        self._label = f"{self._description}: {literal(phase)}" if phase else self._description
        self._total, self._done = total, 0
        if self._bar is not None:
            self._bar.update(self._task, description=self._label, total=total, completed=0)
        else:
            self._show()

    def _show(self) -> None:
        if time.monotonic() - self._started < self._delay:
            return
        from rich.progress import (  # only long runs need it: keep it off start-up
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
        self._task = self._bar.add_task(self._label, total=self._total, completed=self._done)

    def advance(self, steps: int = 1) -> None:
        self._done += steps
        if self._bar is not None:
            self._bar.advance(self._task, steps)
        elif self._total:
            self._show()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def write_out(self, text: str) -> None:
        """Take the bar down, then write an export's text on stdout (see `write_out`)."""
        self.stop()
        write_out(text)


@contextmanager
def progress(description: str, enabled: bool = True, delay: float = 1.0) -> Iterator[_Bar]:
    """Show a progress bar on stderr while the block runs (call .start(total), .advance(n)).

    Shown only on a terminal, never with -q, and only once the block has run `delay`
    seconds; `.start(total, phase)` again begins the next phase of the same work.
    """
    bar = _Bar(description, enabled, delay)
    try:
        yield bar
    finally:
        bar.stop()
