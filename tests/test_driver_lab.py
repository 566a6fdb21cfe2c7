"""The shell driver over real SSH: a policy push is one exec per device, and it is exact.

The lab logs every SSH command a device runs (`log/commands`), so these tests count the
round trips the old four-exec push made and the one-script push must not.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import rows

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
# Each entry opens with its time and a tab; a long command is cut to 2000 bytes, newline
# and all, so entries are counted by that opening, not by lines.
_EXEC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\t")


def _execs(device: Any) -> int:
    return len(_EXEC.findall((device.path / "log" / "commands").read_text()))


@pytest.fixture
def three(enrolled: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    return list(enrolled(3))


@pytest.mark.lab
def test_a_push_and_a_refresh_cost_one_exec_per_device(mdm: Any, lab: Any,
                                                       three: list[Any]) -> None:
    before = [_execs(d) for d in three]
    out = mdm.json("policy", "push")
    assert len(out["done"]) == 3
    assert [_execs(d) - n for d, n in zip(three, before, strict=True)] == [1, 1, 1]
    again = mdm.json("policy", "push")
    assert sorted(again["unchanged"]) == sorted(d.serial for d in three)
    assert [_execs(d) - n for d, n in zip(three, before, strict=True)] == [2, 2, 2]
    mdm.json("devices", "refresh")
    assert [_execs(d) - n for d, n in zip(three, before, strict=True)] == [3, 3, 3]


@pytest.mark.lab
def test_a_push_damaged_in_transit_fails_that_device_and_leaves_nothing_behind(
        mdm: Any, lab: Any, three: list[Any], db_path: Path) -> None:
    damaged, *others = three
    lab.lab.fault(damaged.serial, "corrupt-upload")
    out = mdm.json("policy", "push", code=1)
    assert [(f["serial"], f["kind"]) for f in out["failed"]] == [
        (damaged.serial, "corrupt_transfer")]
    assert "discarded" in out["failed"][0]["error"]
    inbox = damaged.path / "mdm-dpc" / "inbox"
    assert list(inbox.iterdir()) == []  # no policy, no half-written temporary file
    assert sorted(d["serial"] for d in out["done"]) == sorted(d.serial for d in others)
    lab.lab.fault(damaged.serial, "corrupt-upload", clear=True)
    assert [d["serial"] for d in mdm.json("policy", "push")["done"]] == [damaged.serial]
    applied = dict(rows(db_path, "SELECT serial, applied_policy FROM devices"))
    assert applied[damaged.serial] == out["done"][0]["to"]


@pytest.mark.lab
def test_a_dpc_that_will_not_apply_is_named_with_its_own_words(mdm: Any, lab: Any,
                                                              three: list[Any]) -> None:
    broken = three[0]
    dpc = broken.path / "bin" / "dpc"
    original = dpc.read_bytes()  # the lab's reset keeps bin/: put the real DPC back after
    dpc.write_text("#!/bin/sh\necho 'dpc: storage is read-only' >&2\nexit 1\n")
    try:
        out = mdm.json("policy", "push", code=1)
    finally:
        dpc.write_bytes(original)
    assert [(f["serial"], f["kind"]) for f in out["failed"]] == [
        (broken.serial, "policy_not_applied")]
    assert "apply exit 1" in out["failed"][0]["error"]
    assert "storage is read-only" in out["failed"][0]["error"]
