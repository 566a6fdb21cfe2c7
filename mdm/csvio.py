"""CSV in and out, the way spreadsheets actually produce and consume it.

Reading: UTF-8 with or without a BOM, CRLF or LF, headers in any case and with stray
spaces, every cell kept as text (so leading zeros survive). Problems come back as a
list of `Problem`s naming file, row and column; nothing is half-read.

Writing: cells that a spreadsheet would run as a formula (`= + - @`, tab, CR) are
neutralised with a leading apostrophe (OWASP's CSV injection advice). Booleans are
written `true`/`false`, as JSON writes them and as the roster import reads them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mdm.errors import InputError, Problem

MAX_BYTES = 200 * 1024 * 1024
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Row:
    line: int  # the file's line number of the row, as a spreadsheet shows it
    values: dict[str, str]


def normalise_header(name: str) -> str:
    """Map 'Serial Number ', 'SERIAL_NUMBER' and 'serial-number' to 'serial_number'."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def read_rows(path: Path, required: Sequence[str],
              aliases: dict[str, str] | None = None) -> list[Row]:
    """Read a CSV file into rows of stripped text, or raise with every structural problem."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path} is {len(raw)} bytes; the limit is {MAX_BYTES}",
                         "split the file")
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
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InputError(f"{where}, line 1: the header row is not valid CSV ({exc})",
                         "export the sheet as CSV") from None
    names = [normalise_header(h) for h in header]
    names = [(aliases or {}).get(n, n) for n in names]
    problems: list[Problem] = []
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    for name in dupes:
        problems.append(Problem(f"{where}, line 1", f"column {name!r} appears more than once",
                                "keep one of them"))
    for name in required:
        if name not in names:
            problems.append(Problem(f"{where}, line 1", f"required column {name!r} is missing",
                                    f"add a {name} column; columns found: "
                                    + ", ".join(n for n in names if n)))
    if problems:
        raise InputError(f"{path}: the header row is not usable", problems=problems)
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
                                            f"{len(record)} cells but {len(names)} columns",
                                            "remove the extra cells or quote values that"
                                            " contain commas"))
                    continue
            cells = record + [""] * (len(names) - len(record))
            rows.append(Row(line, {n: c.strip() for n, c in zip(names, cells, strict=False)
                                   if n}))
    except csv.Error as exc:
        problems.append(Problem(f"{where}, line {reader.line_num}", f"not valid CSV: {exc}",
                                "check the quoting on that line"))
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s); nothing was imported",
                         problems=problems)
    if not rows:
        raise InputError(f"{path} has a header but no rows", "export the sheet with its data")
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
