"""Exports land whole, private and only where meant, and the log records exactly those."""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdm import safefile
from mdm.errors import ExitCode, MdmError
from mdm.store import audit
from tests.helpers import rows

pytestmark = pytest.mark.backends

EXPORTS = [("officers", "export"), ("devices", "export")]


def _disclosures(db_path: Path) -> list[tuple[object, ...]]:
    return rows(db_path, "SELECT action, after FROM audit WHERE action LIKE '%.export'")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("command", EXPORTS)
def test_an_export_file_is_private_whole_and_recorded_after(
        mdm: Any, inventory: Any, tmp_path: Path, db_path: Path, umask_zero: None,
        command: tuple[str, ...]) -> None:
    out = tmp_path / "out" / "export.csv"
    out.parent.mkdir()
    mdm(*command, "-o", out, "--reason", "FOI 12")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))) in (20, 60)
    assert os.listdir(out.parent) == ["export.csv"]  # no temporary file left behind
    log = mdm.json("audit", "log")
    assert log[-1]["action"] == f"{command[0]}.export"
    assert log[-1]["after"]["to"] == str(out) and log[-1]["after"]["reason"] == "FOI 12"


@pytest.mark.parametrize("command", EXPORTS)
@pytest.mark.parametrize("target", ["/dev/full", "somedir", "/no/such/dir/x.csv", "link",
                                    "existing"])
def test_a_bad_target_exits_2_and_records_no_disclosure(
        mdm: Any, inventory: Any, tmp_path: Path, db_path: Path, command: tuple[str, ...],
        target: str) -> None:
    (tmp_path / "somedir").mkdir()
    (tmp_path / "existing").write_text("keep me")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere.csv")
    path = target if target.startswith("/") else str(tmp_path / target)
    before = _disclosures(db_path)
    err = mdm(*command, "-o", path, code=2).stderr
    assert f"cannot write {path}: " in err
    assert _disclosures(db_path) == before
    assert not (tmp_path / "elsewhere.csv").exists()
    assert (tmp_path / "existing").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path / "somedir")) == []


def test_force_replaces_an_existing_file_and_keeps_it_private(
        mdm: Any, inventory: Any, tmp_path: Path, db_path: Path) -> None:
    out = tmp_path / "devices.json"
    out.write_text("old")
    out.chmod(0o644)
    mdm("devices", "export", "-f", "json", "-o", out, "--force")
    assert out.read_text().startswith("[") and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(_disclosures(db_path)) == 1


def test_a_full_disk_leaves_no_file_and_no_disclosure(
        mdm: Any, inventory: Any, tmp_path: Path, db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safefile.os, "write", full)
    err = mdm("officers", "export", "-o", tmp_path / "officers.csv", code=2).stderr
    monkeypatch.undo()
    assert "the disk is full" in err
    assert not [p for p in os.listdir(tmp_path) if "officers" in p]
    assert _disclosures(db_path) == []


def test_the_file_is_in_place_when_recorded_and_removed_if_recording_fails(
        mdm: Any, inventory: Any, tmp_path: Path, db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "devices.csv"
    in_place_when_recorded = []

    def busy(*args: Any, **kwargs: Any) -> int:
        in_place_when_recorded.append(out.is_file())
        raise MdmError("the inventory is busy", code=ExitCode.PARTIAL)

    monkeypatch.setattr(audit, "record", busy)
    mdm("devices", "export", "-o", out, code=1)
    monkeypatch.undo()
    assert in_place_when_recorded == [True]
    assert not [p for p in os.listdir(tmp_path) if "devices" in p]
    assert _disclosures(db_path) == []


def test_the_compliance_export_is_written_the_same_safe_way(mdm: Any, inventory: Any,
                                                            tmp_path: Path, db_path: Any) -> None:
    rows(db_path, "UPDATE devices SET status = 'enrolled'")  # a report judges enrolled ones
    out = tmp_path / "compliance.csv"
    out.write_text("keep me")
    assert "already exists" in mdm("compliance", "report", "-f", "csv", "-o", out,
                                   code=2).stderr
    assert out.read_text() == "keep me"
    mdm("compliance", "report", "-f", "csv", "-o", out, "--force", code=1)  # none compliant
    assert out.read_text(encoding="utf-8").startswith("serial,")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("what", ["officers", "devices"])
def test_an_export_that_cannot_reach_stdout_records_no_disclosure(mdm: Any, inventory: Any,
                                                                  what: str) -> None:
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "mdm", what, "export"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "no disclosure was recorded" in done.stderr
    assert not [r for r in mdm.json("audit", "log")
                if r["action"] == f"{what}.export"]
    with open("/dev/full", "w") as full:
        listed = subprocess.run([sys.executable, "-m", "mdm", "officers", "list", "--json"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert listed.returncode == 1 and "could not write the output" in listed.stderr
