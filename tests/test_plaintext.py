"""Tables and headings drawn without rich are the very bytes rich draws, or left to rich."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from typing import Any

import pytest

from mdm import plaintext, ui

WORDS = ["a", "cohort", "14530", "40.5", "NO", "yes", "→", "—", "…", "✓", "x y", "", "[b]m[/b]",
         "5885 of 14530", "min_compliant_percent", "2026-11-30T10:05:19.128377Z"]
ODD = ["é", "漢字", "two  spaces", " lead", "trail ", "a\x1bb", "\u202e", "x" * 90]


def _word(rng: random.Random) -> str:
    return rng.choice(ODD if rng.random() < 0.05 else WORDS)


def _rich(draw: Any, width: int, styled: bool) -> str:
    from rich.console import Console  # noqa: TID251  # the reference the tests compare with

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=styled, highlight=False,
                      soft_wrap=False, color_system="standard" if styled else None,
                      legacy_windows=False)
    draw(console)
    return out.getvalue()


def _value(rng: random.Random) -> Any:
    kind = rng.random()
    if kind < 0.1:
        return None
    if kind < 0.2:
        return rng.random() < 0.5
    if kind < 0.3:
        return ui.Alarm(_word(rng))
    if kind < 0.35:
        return {"k": _word(rng)}
    if kind < 0.45:
        return rng.randint(0, 10**rng.randint(1, 12))
    return " ".join(_word(rng) for _ in range(rng.randint(1, 4)))


@pytest.mark.parametrize("styled", [True, False], ids=["terminal", "pipe"])
def test_a_table_is_drawn_as_rich_draws_it_or_left_to_rich(styled: bool) -> None:
    rng = random.Random(20261130)
    drawn = 0
    for _ in range(400):
        columns = [rng.choice(["stage", "people", "percent", "condition", "met", "figure",
                               "a b", "é", "x"]) + str(i) for i in range(rng.randint(1, 5))]
        rows = [{c: _value(rng) for c in columns} for _ in range(rng.randint(0, 6))]
        title = rng.choice(["", "gate: holds", "gate: does not hold", "t" * 70, "→ x"])
        width = rng.choice([40, 80, 120, 200])
        to = plaintext.Target(width, styled)
        plain = ui._plain_table(rows, columns, title, to)
        if plain is None:
            continue
        drawn += 1
        assert plain == _rich(lambda c, r=rows, k=columns, t=title:  # noqa: B023
                              c.print(ui._rich_table(r, k, t)), width, styled)
    assert drawn > 60  # many tables are drawn without rich (the rest, wider, left to it)


@pytest.mark.parametrize("styled", [True, False], ids=["terminal", "pipe"])
def test_a_heading_is_drawn_as_rich_draws_it_or_left_to_rich(styled: bool) -> None:
    from rich.text import Text  # noqa: TID251  # the reference the tests compare with

    rng = random.Random(7)
    drawn = 0
    for _ in range(300):
        text = " ".join(_word(rng) for _ in range(rng.randint(0, 12)))
        lines = [" ".join(_word(rng) for _ in range(rng.randint(0, 12)))
                 for _ in range(rng.randint(0, 2))]
        width = rng.choice([40, 80, 120])
        plain = ui._plain_heading(text, lines, plaintext.Target(width, styled))
        if plain is None:
            continue
        drawn += 1

        def draw(console: Any, text: str = text, lines: list[str] = lines) -> None:
            console.print(Text(ui.literal(text), style="bold"))
            for line in lines:
                console.print(ui._text(line))

        assert plain == _rich(draw, width, styled)
    assert drawn > 50


def _status(env: dict[str, str], tty: bool) -> str:
    """`mdm`'s table on a pipe (or a pseudo-terminal), in a process of its own."""
    code = ("from mdm import ui\n"
            "ui.table([{'stage': 'cohort', 'people': 57}, {'stage': 'x', 'people': None}],"
            " ['stage', 'people'], title='gate: holds')\n"
            "import sys; print('rich' in sys.modules)\n")
    if not tty:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True, timeout=60).stdout
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=child,
                            stderr=subprocess.DEVNULL)
    import os

    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(main)
    return out.decode().replace("\r\n", "\n")


@pytest.mark.parametrize(("tty", "extra", "fast"), [
    (False, {}, True), (True, {"TERM": "xterm-256color"}, True),
    (True, {"TERM": "dumb"}, False), (False, {"FORCE_COLOR": "1"}, False),
    (True, {"TERM": "xterm", "NO_COLOR": "1"}, False), (False, {"COLUMNS": "12"}, False),
    (False, {"PYTHONIOENCODING": "latin-1"}, False),
])
def test_the_table_on_a_real_stream_is_rich_s_and_rich_loads_only_when_needed(
        tty: bool, extra: dict[str, str], fast: bool) -> None:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "TERM", "TTY_COMPATIBLE",
                        "TTY_INTERACTIVE", "PYTHONIOENCODING")}
    out = _status({**env, **extra}, tty)
    body, loaded = out.rsplit("\n", 2)[0] + "\n", out.rsplit("\n", 2)[1]
    assert loaded == str(not fast)
    assert "stage" in body or "s…" in body  # rich squeezes a table wider than the console
    if tty and fast:
        assert f"{plaintext.BOLD}stage" in body
    if not tty and "FORCE_COLOR" not in extra:
        assert "\x1b" not in body


@pytest.mark.parametrize("extra", [{"PYTHONIOENCODING": "ascii"},
                                   {"PYTHONIOENCODING": "latin-1"}, {"COLUMNS": "²"}])
def test_a_locale_that_cannot_encode_a_character_gets_an_escape_not_a_crash(
        extra: dict[str, str]) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "COLUMNS")}
    done = subprocess.run([sys.executable, "-m", "mdm", "rollout", "--help"],
                          env={**env, **extra}, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cohort" in done.stdout.decode("ascii" if "PYTHONIOENCODING" in extra else "utf-8")
    if "PYTHONIOENCODING" in extra:
        assert b"cohort \\u2192 handed over" in done.stdout
