"""Hostile and careless CSV files: capped early, problems listed sanely, re-imports one line."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mdm import csvio, examples
from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends

Files = Callable[..., Path]


def _wide_header(extra: int) -> str:
    names = list(examples.MANIFEST_COLUMNS) + [f"c{i}" for i in range(extra)]
    return ",".join(names) + "\n" + ",".join("x" for _ in names) + "\n"


@pytest.mark.parametrize("command", [("enrol", "import"), ("officers", "import"),
                                     ("groups", "add", "pilot", "--from")])
def test_a_header_of_40k_columns_is_refused_at_once(mdm: Any, inventory: Any, files: Files,
                                                   db_path: Path,
                                                   command: tuple[str, ...]) -> None:
    mdm("groups", "create", "pilot")
    path = files("wide.csv", _wide_header(40_000))
    before = db_fingerprint(db_path)
    err = mdm(*command, path, code=2).stderr
    assert f"{path}, line 1: the header has 40,0" in err
    assert f"the limit is {csvio.MAX_COLUMNS}" in err
    assert db_fingerprint(db_path) == before


def test_a_cell_over_the_limit_is_refused_with_its_line(mdm: Any, inventory: Any,
                                                        files: Files, db_path: Path) -> None:
    rows_ = examples.generate_manifest(3, seed=5)
    rows_[1]["box_id"] = "B" * (csvio.MAX_CELL + 1)
    before = db_fingerprint(db_path)
    err = mdm("enrol", "import", files("long.csv", rows_, examples.MANIFEST_COLUMNS),
              code=2).stderr
    assert f"line 3: a cell is longer than {csvio.MAX_CELL} characters" in err
    assert db_fingerprint(db_path) == before


def _bad_manifest(count: int) -> list[dict[str, Any]]:
    out = examples.generate_manifest(count, seed=3)
    for r in out:  # a mistyped check digit on every row
        r["imei1"] = r["imei1"][:-1] + str((int(r["imei1"][-1]) + 1) % 10)
    return out


def test_3000_bad_rows_show_20_and_count_the_rest_and_errors_has_all(
        mdm: Any, inventory: Any, files: Files, db_path: Path, tmp_path: Path) -> None:
    path = files("bad.csv", _bad_manifest(3000), examples.MANIFEST_COLUMNS)
    before = db_fingerprint(db_path)
    err = mdm("enrol", "import", path, code=2).stderr
    assert err.count("fails the IMEI check digit") == 20
    assert "and 2,980 more" in err and "--errors FILE" in err
    report = tmp_path / "problems.csv"
    err = mdm("enrol", "import", path, "--errors", report, code=2).stderr
    assert str(report) in err
    listed = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert [r["row"] for r in listed] == [str(n) for n in range(2, 3002)]
    assert {r["field"] for r in listed} == {"imei1"}
    assert all("fails the IMEI check digit" in r["problem"] for r in listed)
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert db_fingerprint(db_path) == before
    good = files("good.csv", examples.generate_manifest(5, seed=12, first_snr=500),
                 examples.MANIFEST_COLUMNS)
    mdm("enrol", "import", good, "--errors", report)
    assert report.read_text(encoding="utf-8").strip() == ",".join(csvio.PROBLEM_COLUMNS)


def test_a_bad_errors_path_is_refused_before_the_import(mdm: Any, inventory: Any,
                                                       files: Files) -> None:
    path = files("bad.csv", _bad_manifest(3), examples.MANIFEST_COLUMNS)
    text = path.read_text()
    assert "is the file being imported" in mdm("enrol", "import", path, "--errors", path,
                                               code=2).stderr
    assert path.read_text() == text
    assert "there is no folder" in mdm("enrol", "import", path, "--errors",
                                       path.parent / "no" / "e.csv", code=2).stderr


def test_reimporting_a_manifest_says_so_in_one_line(mdm: Any, inventory: Any, tmp_path: Path,
                                                    db_path: Path) -> None:
    path = tmp_path / "manifest.csv"  # the inventory fixture imported exactly this file
    before = db_fingerprint(db_path)
    result = mdm("enrol", "import", path)
    assert result.stderr.count("\n") == 1
    assert "manifest.csv was already imported on " in result.stderr
    assert "by admin" in result.stderr and "nothing changed" in result.stderr
    assert db_fingerprint(db_path) == before
    seen = mdm.json("enrol", "import", path)["already_imported"]
    first = rows(db_path, "SELECT seq, at, operator FROM audit WHERE action = 'devices.import'")
    assert first == [(seen["audit_seq"], seen["at"], seen["operator"])]


def test_reimporting_a_roster_says_so_in_one_line(mdm: Any, inventory: Any, files: Files,
                                                  tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "roster.csv"
    before = db_fingerprint(db_path)
    err = mdm("officers", "import", path, operator="admin").stderr
    assert err.count("\n") == 1 and "roster.csv was already imported on " in err
    assert mdm("-q", "officers", "import", path, operator="admin").stderr == ""
    assert db_fingerprint(db_path) == before
    changed = [dict(p) for p in inventory["roster"]]
    changed[0]["station"] = "Kendal"
    result = mdm.json("officers", "import", files("roster.csv", changed,
                                                  examples.ROSTER_COLUMNS))
    assert result["updated"] == 1 and "already_imported" not in result
