"""CSV in and out, the way spreadsheets actually produce and consume it.

Reading: UTF-8 with or without a BOM, CRLF or LF, headers in any case and with stray
spaces, every cell kept as text (so leading zeros survive). Problems come back as a
list of `Problem`s naming file, row and column; nothing is half-read. Size, column count
and cell length are capped before any per-column work, so no file can make a read slow.

Writing: cells that a spreadsheet would run as a formula (`= + - @`, tab, CR) are
neutralised with a leading apostrophe (OWASP's CSV injection advice). Booleans are
written `true`/`false`, as JSON writes them and as the roster import reads them.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdm.errors import InputError, Problem

MAX_BYTES = 200 * 1024 * 1024
MAX_COLUMNS = 256  # a supplier's manifest has ~30; thousands means a broken or hostile file
MAX_CELL = 4096  # characters in one cell; longer is refused by the csv module itself
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_WHERE_ROW = re.compile(r"^(?P<file>.*), (?:row|line) (?P<row>\d+)$")


@dataclass(frozen=True)
class Row:
    """One data row of a CSV file, by column name, with its line in the file."""

    line: int  # the file's line number of the row, as a spreadsheet shows it
    values: dict[str, str]


def normalise_header(name: str) -> str:
    """Map 'Serial Number ', 'SERIAL_NUMBER' and 'serial-number' to 'serial_number'."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def read_bytes(path: Path) -> bytes:
    """Read a CSV file whole (it is hashed and parsed from the same bytes), within the cap."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MiB",
                         "split the file")
    return raw


def read_rows(path: Path, required: Sequence[str],
              aliases: dict[str, str] | None = None) -> list[Row]:
    """Read a CSV file into rows of stripped text, or raise with every structural problem."""
    return parse_rows(read_bytes(path), path, required, aliases)


@contextmanager
def _cell_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_problem(exc: csv.Error) -> tuple[str, str]:
    if "field larger than field limit" in str(exc):
        return (f"a cell is longer than {MAX_CELL} characters",
                "check the quoting on that line: an unclosed quote swallows the rest of the"
                " file")
    return f"not valid CSV: {exc}", "check the quoting on that line"


def parse_rows(raw: bytes, path: Path, required: Sequence[str],
               aliases: dict[str, str] | None = None) -> list[Row]:
    """Parse CSV bytes into rows of stripped text, or raise with every structural problem."""
    where = str(path)
    if b"\x00" in raw:
        raise InputError(f"{path} is not a text file (it contains NUL bytes)",
                         "export the sheet as CSV (UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start} cannot be read)",
                         "export the sheet as 'CSV UTF-8'") from None
    if not text.strip():
        raise InputError(f"{path} is empty", "export the sheet again, with its header row")
    with _cell_limit(MAX_CELL):
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader)
        except csv.Error as exc:
            message, hint = _csv_problem(exc)
            raise InputError(f"{where}, line 1: the header row is {message}", hint) from None
        # Refuse a wide header before any per-column work, so no file can make it slow.
        if len(header) > MAX_COLUMNS:
            raise InputError(f"{where}, line 1: the header has {len(header):,} columns;"
                             f" the limit is {MAX_COLUMNS}",
                             "check that this is the right file, exported as CSV")
        names = [normalise_header(h) for h in header]
        names = [(aliases or {}).get(n, n) for n in names]
        problems = _header_problems(names, required, where)
        if problems:
            raise InputError(f"{path}: the header row is not usable", problems=problems)
        rows = _records(reader, names, where, problems)
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                         problems=problems)
    if not rows:
        raise InputError(f"{path} has a header but no rows", "export the sheet with its data")
    return rows


def _header_problems(names: list[str], required: Sequence[str], where: str) -> list[Problem]:
    problems: list[Problem] = []
    counts = Counter(n for n in names if n)
    for name in sorted(n for n, count in counts.items() if count > 1):
        problems.append(Problem(f"{where}, line 1", f"column {name!r} appears more than once",
                                "keep one of them"))
    for name in required:
        if name not in counts:
            problems.append(Problem(f"{where}, line 1", f"required column {name!r} is missing",
                                    f"add a {name} column; columns found: "
                                    + ", ".join(n for n in names if n)))
    return problems


def _records(reader: Any, names: list[str], where: str,
             problems: list[Problem]) -> list[Row]:
    rows: list[Row] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines at the end of a spreadsheet export
            if len(record) > len(names):
                extra = record[len(names):]
                if any(cell.strip() for cell in extra):
                    problems.append(Problem(f"{where}, line {line}",
                                            f"{len(record):,} cells but {len(names)} columns",
                                            "remove the extra cells or quote values that"
                                            " contain commas"))
                    continue
            cells = record + [""] * (len(names) - len(record))
            rows.append(Row(line, {n: c.strip() for n, c in zip(names, cells, strict=False)
                                   if n}))
    except csv.Error as exc:
        message, hint = _csv_problem(exc)
        problems.append(Problem(f"{where}, line {reader.line_num}", message, hint))
    return rows


def neutralise(value: object) -> str:
    """Render a value for a CSV cell that no spreadsheet will evaluate (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def write_csv(rows: Iterable[dict[str, object]], columns: Sequence[str]) -> str:
    """Render rows as CSV text with every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    return buffer.getvalue()


PROBLEM_COLUMNS = ("row", "field", "problem", "hint")


def problems_csv(problems: Iterable[Problem]) -> str:
    """Render problems as CSV (row, field, problem, hint), one line per problem."""
    rows: list[dict[str, object]] = []
    for p in problems:
        match = _WHERE_ROW.match(p.where)
        rows.append({"row": match["row"] if match else "", "field": p.field,
                     "problem": p.message if match or not p.where
                     else f"{p.where}: {p.message}",
                     "hint": p.hint})
    return write_csv(rows, PROBLEM_COLUMNS)
