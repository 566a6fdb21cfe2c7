"""Tables and lines drawn exactly as rich draws them, without importing rich, where the
result is certain.

Importing rich and drawing a dozen small tables costs a tenth of a second or more: as much
as all the counting behind `mdm rollout status` at 45,000 people. For the common case,
text of known width that fits the console, this module writes the very characters rich
would (tests/test_plaintext.py compares the two, byte for byte, terminal and pipe).
Anything else returns None and mdm.ui lets rich draw it: a character whose width rich
measures its own way, a table or line rich would wrap, an environment variable that
changes rich's styles or width, an output that is not UTF-8. Callers pass text already
made literal (mdm.ui.literal), so nothing here can carry terminal control.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, NamedTuple

BOLD, BOLD_RED, RESET = "\x1b[1m", "\x1b[1;31m", "\x1b[0m"
# Beyond printable ASCII, only the characters mdm's own fixed strings use (one cell each).
_ONE_CELL = frozenset("→—…✓")
# What makes rich choose styles or a width by rules not followed here.
_RICH_ENV = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
             "JUPYTER_COLUMNS", "JUPYTER_LINES")


class Target(NamedTuple):
    """Where text goes: the console width rich would use, and whether it styles text."""

    width: int
    styled: bool


def target(stream: IO[str]) -> Target | None:
    """Return how rich would draw on this stream, or None where this module cannot match it."""
    env = os.environ
    if any(name in env for name in _RICH_ENV):
        return None
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    if encoding not in ("utf8", "utf_8"):
        return None
    try:
        styled = bool(stream.isatty())
    except (AttributeError, ValueError):
        return None
    if styled and env.get("TERM", "").lower() in ("dumb", "unknown"):
        return None
    columns = env.get("COLUMNS")
    if columns is not None:
        if not (columns.isascii() and columns.isdigit()) or int(columns) == 0:
            return None
        return Target(int(columns), styled)
    width = 0
    for fd in (0, 1, 2):  # as rich: the first standard stream that is a terminal
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    return Target(width or 80, styled)


def fits(text: str) -> bool:
    """Say whether every character of text takes one cell as rich measures it."""
    return (text.isascii() and text.isprintable()) or all(
        (ch.isascii() and ch.isprintable()) or ch in _ONE_CELL for ch in text)


def line(text: str, to: Target, bold: bool = False) -> str | None:
    """Return one line as rich prints it (a newline at the end), or None if rich would wrap it."""
    if not fits(text) or len(text) > to.width:
        return None
    if bold and to.styled and text:
        return f"{BOLD}{text}{RESET}\n"
    return text + "\n"


def table(header: Sequence[str], rows: Sequence[Sequence[tuple[str, bool]]], title: str,
          to: Target) -> str | None:
    """Return a table as rich's default Table prints it, or None where rich would differ.

    Each cell is (text, alarm): an alarm is printed bold red on a terminal.
    """
    if not header or not all(fits(h) and h == h.strip() for h in header):
        return None
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) != len(header):
            return None
        for i, (text, _) in enumerate(row):
            if not fits(text) or text != text.strip() or "  " in text:
                return None
            widths[i] = max(widths[i], len(text))
    total = sum(widths) + 3 * len(widths) + 1
    if total > to.width or not fits(title) or len(title) > total or title != title.strip():
        return None
    out = []
    if title:
        left = (total - len(title)) // 2
        out.append(" " * left + title + " " * (total - len(title) - left))
    out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    if to.styled:
        out.append("┃" + "┃".join(f"{BOLD} {RESET}{BOLD}{h.ljust(w)}{RESET}{BOLD} {RESET}"
                                   for h, w in zip(header, widths, strict=True)) + "┃")
    else:
        out.append("┃" + "┃".join(f" {h.ljust(w)} " for h, w in zip(header, widths,
                                                                      strict=True)) + "┃")
    out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    for row in rows:
        cells = []
        for (text, alarm), w in zip(row, widths, strict=True):
            if alarm and to.styled and text:
                cells.append(f" {BOLD_RED}{text}{RESET}{' ' * (w - len(text))} ")
            else:
                cells.append(f" {text.ljust(w)} ")
        out.append("│" + "│".join(cells) + "│")
    out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return "\n".join(out) + "\n"
