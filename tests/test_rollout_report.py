"""The rollout report: a self-contained page that a real headless browser renders, whose
numbers are those of `rollout status --json`."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks" / "rollout.yaml"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(tmp_path: Path, *args: str) -> str:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("Debian's chromium is missing: bash scripts/setup.sh installs it")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


class _Numbers(HTMLParser):
    """Collect the figures the page marks with data-wave and data-stage / data-gate."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], str] = {}
        self.gates: dict[str, str] = {}
        self._open: tuple[str, str] | None = None
        self.blockers = ""
        self._blockers = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-stage"):
            self._open = (str(a["data-wave"]), str(a["data-stage"]))
        if a.get("data-gate"):
            self.gates[str(a["data-wave"])] = str(a["data-gate"])
        self._blockers = a.get("id") == "open-blockers"

    def handle_data(self, data: str) -> None:
        if self._open:
            self.counts[self._open] = data.strip()
            self._open = None
        if self._blockers:
            self.blockers, self._blockers = data.strip(), False


def _distinct_pixels(png: bytes) -> int:
    """Return how many distinct byte values the image's pixel data holds (blank: a few)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(data)))


def test_the_report_renders_in_a_browser_with_the_numbers_of_rollout_status(
        mdm: Any, inventory: dict[str, Any], tmp_path: Path, files: Any) -> None:
    people = [p for p in inventory["roster"] if p["status"] == "ACTIVE"]
    mdm("rollout", "pilot-select", "--size", "12", "--seed", "4", "--apply")
    pilot = [p["officer_id"] for p in mdm.json("groups", "show", "pilot")["members"]]
    mdm("assign", "--from", files("pairs.csv", "serial_number,officer\n" + "".join(
        f"{d['serial_number']},{oid}\n"
        for d, oid in zip(inventory["delivery"][:5], pilot[:5], strict=True))))
    mdm("training", "import", files("trained.csv", "officer,date\n" + "".join(
        f"{oid},2015-04-01\n" for oid in pilot[:3])))
    mdm("feedback", "add", "--officer", pilot[0], "--severity", "blocker", "--text",
        "<b>sync</b> fails & drops entries")
    mdm("feedback", "add", "--officer", people[0]["officer_id"], "--severity", "minor",
        "--text", "fine", "--minutes-saved", "30")
    mdm("rollout", "advance", "pilot", "--plan", SHIPPED)
    page = tmp_path / "report.html"
    mdm("rollout", "report", "--plan", SHIPPED, "-o", page)
    # pygal's import hook (for map plugins) would make every later import in this process
    # warn; the report takes it out again.
    assert not [f for f in sys.meta_path if type(f).__name__ == "PluginImportFixer"]
    status = mdm.json("rollout", "status", "--plan", SHIPPED)
    html = page.read_text()
    assert "<script" not in html and 'src="' not in html and 'href="http' not in html
    assert "&lt;b&gt;sync&lt;/b&gt; fails &amp; drops entries" in html  # escaped, not markup
    mdm("rollout", "report", "--plan", SHIPPED, "-o", page, code=2)  # never overwritten

    parsed = _Numbers()
    parsed.feed(_chromium(tmp_path, "--dump-dom", page.as_uri()))
    expected = {(w["wave"], stage): str(v["count"]) for w in status["waves"]
                for stage, v in w["funnel"].items()}
    assert parsed.counts == expected
    assert expected[("pilot", "allocated")] == "5" and expected[("pilot", "trained")] == "3"
    assert parsed.gates == {w["wave"]: "holds" if w["gate"]["holds"] else
                            "held" if w["gate"]["judged"] else "not-judged"
                            for w in status["waves"]}
    assert parsed.gates["pilot"] == "held" and parsed.gates["north"] == "not-judged"
    assert parsed.blockers == str(status["open_blockers"]) == "1"

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert _distinct_pixels(shot.read_bytes()) > 40
