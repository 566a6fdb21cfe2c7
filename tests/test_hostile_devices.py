"""One hostile device among real sshd devices: it alone fails, named; the rest are recorded.

Each hostile output shape is a lab fault (`mdm lab fault SERIAL SHAPE`), so these cross
real SSH connections: refresh, push (status reads) and the compliance report.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Raw, inventory_bytes, rows

pytestmark = pytest.mark.backends

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"

# Each hostile shape and words the refused device's reason must hold.
REFRESH_SHAPES = {
    "dpc-forged-separator": "the DPC status is not JSON",
    "dpc-status-list": "the DPC status is a list, not an object",
    "dpc-sha-list": "policySha256 is a list",
    "dpc-details-strings": "nonComplianceDetails holds a string",
    "binary-output": "not UTF-8",
    "huge-facts": "more than 16 MiB",
    "huge-versioncode": "versionCode",
    "patch-unknown": "security_patch 'unknown' is not a date",
}
PUSH_SHAPES = {k: v for k, v in REFRESH_SHAPES.items()
               if k.startswith("dpc-") or k == "binary-output"}


@pytest.fixture
def fleet(mdm: Any, enrolled: Any, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[Any]]:
    """Take N enrolled lab devices, with a copy of the shipped policies to push."""
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    return lambda count: list(enrolled(count))


@pytest.fixture
def three(fleet: Callable[[int], list[Any]]) -> list[Any]:
    """Three enrolled lab devices, and a copy of the shipped policies to push."""
    return fleet(3)


def _facts(db_path: Path, serial: str) -> dict[str, Any]:
    conn = Raw(db_path)
    try:
        cur = conn.execute("SELECT f.*, d.last_seen, d.last_contact_error FROM device_facts f"
                           " JOIN devices d ON d.id = f.device_id WHERE d.serial = ?",
                           (serial,))
        names = [c[0] for c in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))
    finally:
        conn.close()


def _by_serial(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["serial"]: e for e in entries}


# Each hostile shape sits on a device of its own among well-behaved ones, all in one run:
# each shape is still judged on its own (a subtest per shape, named in any failure).

@pytest.mark.lab
def test_refresh_fails_each_hostile_device_alone_and_records_the_rest(
        mdm: Any, lab: Any, fleet: Any, db_path: Path, subtests: Any) -> None:
    shapes = sorted(REFRESH_SHAPES)
    devices = fleet(len(shapes) + 2)
    hostile, others = dict(zip(shapes, devices, strict=False)), devices[len(shapes):]
    before = {shape: _facts(db_path, d.serial) for shape, d in hostile.items()}
    for shape, device in hostile.items():
        lab.lab.fault(device.serial, shape)
    out = mdm.json("devices", "refresh", code=1)
    failed = _by_serial(out["failed"])
    assert sorted(failed) == sorted(d.serial for d in hostile.values())
    assert sorted(d["serial"] for d in out["done"]) == sorted(d.serial for d in others)
    for device in others:
        facts = _facts(db_path, device.serial)
        assert facts["last_seen"] == facts["collected_at"] == out["done"][0]["last_seen"]
        assert json.loads(facts["props"])["ro.serialno"] == device.serial
    for shape, device in hostile.items():
        with subtests.test(shape=shape):
            failure = failed[device.serial]
            assert failure["kind"] == (
                "output_too_large" if shape == "huge-facts" else "malformed_output")
            assert REFRESH_SHAPES[shape] in failure["error"]
            after = _facts(db_path, device.serial)
            assert after["last_contact_error"].startswith(failure["kind"])
            # Nothing the hostile device said was stored: its facts are those it gave at
            # enrolment.
            assert {k: after[k] for k in before[shape] if k != "last_contact_error"} == \
                {k: before[shape][k] for k in before[shape] if k != "last_contact_error"}
            assert "f" * 64 not in json.dumps(after)  # the forged policy-file hash went nowhere
    verdict = mdm.json("audit", "verify")
    assert verdict["ok"]


@pytest.mark.lab
def test_enrolment_refuses_each_hostile_device_alone(mdm: Any, lab: Any, delivered: Any,
                                                     files: Any, db_path: Path,
                                                     subtests: Any) -> None:
    shapes = ["binary-output", "dpc-status-list", "huge-versioncode"]
    devices = delivered(len(shapes) + 2)  # well-behaved first and last, hostile between
    hostile = dict(zip(shapes, devices[1:-1], strict=True))
    for shape, device in hostile.items():
        lab.lab.fault(device.serial, shape)
    plan = files("plan.csv", "serial_number,address,host_key\n" + "".join(
        f"{d.serial},{d.address},{lab.fingerprint(d)}\n" for d in devices))
    out = mdm.json("enrol", "devices", "--from", plan, code=1)
    failed = _by_serial(out["failed"])
    assert sorted(failed) == sorted(d.serial for d in hostile.values())
    status = dict(rows(db_path, "SELECT serial, status FROM devices"))
    assert [status[devices[0].serial], status[devices[-1].serial]] == ["enrolled", "enrolled"]
    for shape, device in hostile.items():
        with subtests.test(shape=shape):
            assert failed[device.serial]["kind"] == "malformed_output"
            assert REFRESH_SHAPES[shape] in failed[device.serial]["error"]
            assert status[device.serial] == "delivered"


@pytest.mark.lab
def test_an_oversized_prop_is_stored_truncated_and_flagged(mdm: Any, lab: Any,
                                                           three: list[Any],
                                                           db_path: Path) -> None:
    from mdm.fleet.deviceout import MAX_VALUE

    device = three[0]
    lab.lab.fault(device.serial, "huge-prop")
    out = mdm.json("devices", "refresh")
    flags = {d["serial"]: d["truncated"] for d in out["done"]}
    assert flags[device.serial] == ["props.ro.lab.huge"]
    assert [flags[d.serial] for d in three[1:]] == [[], []]
    value = json.loads(_facts(db_path, device.serial)["props"])["ro.lab.huge"]
    assert value.startswith("x" * MAX_VALUE) and value.endswith("truncated]")
    assert len(value) < MAX_VALUE + 64  # not 10 MiB
    stored = db_path.read_bytes() if isinstance(db_path, Path) else inventory_bytes(db_path)
    assert len(stored) < 2 * 1024 * 1024
    audit = rows(db_path, "SELECT after FROM audit WHERE action = 'devices.refresh'"
                          " ORDER BY seq DESC LIMIT 1")
    assert json.loads(str(audit[0][0]))["truncated"] == {device.serial: ["props.ro.lab.huge"]}


@pytest.mark.lab
def test_push_fails_each_hostile_device_alone_and_writes_nothing_to_it(
        mdm: Any, lab: Any, fleet: Any, db_path: Path, subtests: Any) -> None:
    shapes = sorted(PUSH_SHAPES)
    devices = fleet(len(shapes) + 2)
    hostile, others = dict(zip(shapes, devices, strict=False)), devices[len(shapes):]
    for shape, device in hostile.items():
        lab.lab.fault(device.serial, shape)
    out = mdm.json("policy", "push", code=1)
    failed = _by_serial(out["failed"])
    assert sorted(failed) == sorted(d.serial for d in hostile.values())
    assert sorted(d["serial"] for d in out["done"]) == sorted(d.serial for d in others)
    applied = dict(rows(db_path, "SELECT serial, applied_policy FROM devices"))
    assert all(applied[d.serial] == out["done"][0]["to"] for d in others)
    assert all((d.path / "mdm-dpc" / "inbox" / "policy.json").exists() for d in others)
    for shape, device in hostile.items():
        with subtests.test(shape=shape):
            assert failed[device.serial]["kind"] == "malformed_output"
            assert PUSH_SHAPES[shape] in failed[device.serial]["error"]
            assert applied[device.serial] is None
            assert not (device.path / "mdm-dpc" / "inbox" / "policy.json").exists()


@pytest.mark.lab
def test_compliance_names_a_device_whose_answer_was_refused_and_judges_the_rest(
        mdm: Any, lab: Any, three: list[Any], db_path: Path) -> None:
    hostile = three[0]
    mdm("policy", "push")
    lab.lab.fault(hostile.serial, "patch-unknown")
    mdm("devices", "refresh", code=1)
    # The report exits 1 while any device is not compliant (each reason in the report).
    report = {r["serial"]: r for r in mdm.json("compliance", "report", code=1)["devices"]}
    codes = [x["code"] for x in report[hostile.serial]["reasons"]]
    assert "output_refused" in codes and not report[hostile.serial]["compliant"]
    assert all(report[d.serial]["reasons"] == [] for d in three[1:])
    lab.lab.fault(hostile.serial, "patch-unknown", clear=True)
    mdm("devices", "refresh")
    report = {r["serial"]: r for r in mdm.json("compliance", "report")["devices"]}
    assert report[hostile.serial]["reasons"] == []


ODD_FACTS = {
    "security_patch": ("unknown", "patch_unreadable"),
    "dpc_status": (json.dumps({"state": "APPLIED", "nonComplianceDetails": ["x", 3]}),
                   "facts_unreadable"),
    "packages": (json.dumps({"uk.police.mdm.dpc": "300"}), "facts_unreadable"),
    "settings": ("not json", "facts_unreadable"),
}
# SQLite only: a word in the integer sdk column is SQLite's loose typing (PostgreSQL's
# bigint column refuses it, so no such fact can be stored there).
ODD_SQLITE_FACTS = {"sdk": ("nineteen", "os_too_old")}


@pytest.mark.lab
def test_compliance_turns_each_odd_stored_fact_into_a_reason_not_a_crash(
        mdm: Any, lab: Any, fleet: Any, db_path: Path, inventory_backend: str,
        subtests: Any) -> None:
    odd = {**ODD_FACTS, **(ODD_SQLITE_FACTS if inventory_backend == "sqlite" else {})}
    columns = sorted(odd)
    devices = fleet(len(columns) + 2)
    spoilt, others = dict(zip(columns, devices, strict=False)), devices[len(columns):]
    mdm("policy", "push")
    mdm("devices", "refresh")
    conn = Raw(db_path)  # as facts stored before they were checked might be
    with conn:
        for column, device in spoilt.items():
            conn.execute(f"UPDATE device_facts SET {column} = ? WHERE device_id ="
                         " (SELECT id FROM devices WHERE serial = ?)",
                         (odd[column][0], device.serial))
    conn.close()
    report = {r["serial"]: r for r in mdm.json("compliance", "report", code=1)["devices"]}
    assert all(report[d.serial]["compliant"] for d in others)
    for column, device in spoilt.items():
        with subtests.test(column=column):
            assert odd[column][1] in [x["code"] for x in report[device.serial]["reasons"]]


# -- property: no stored facts make the judgement raise ----------------------------------

_text = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(
    ["unknown", "2015-02-30", "2015-10-01", "", "[]", "{}", "null", "1e999"]))
_json_text = st.one_of(_text, st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["policySha256", "state", "nonComplianceDetails", "settingName",
                         "packageName", "uk.police.mdm.dpc", "global.adb_enabled"]), c,
        max_size=4), max_leaves=12).map(json.dumps))


@functools.cache
def _constable() -> Any:
    from mdm.policies.layering import Subject, merge
    from mdm.policies.loader import load_tree

    layers, _ = load_tree(SHIPPED)
    return merge(layers, Subject(worker_type="OFFICER", rank="CONSTABLE"), date(2026, 1, 1))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.fixed_dictionaries({
    "dpc_status": _json_text, "packages": _json_text, "settings": _json_text,
    "security_patch": _text, "crypto_state": _text, "policy_file_sha256": _text,
    "sdk": st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())}),
    st.one_of(st.none(), st.text(max_size=40), st.sampled_from(
        ["malformed_output", "malformed_output: x", "output_too_large: y", "timeout: z"])))
@pytest.mark.backends("sqlite")  # no inventory: the judge alone
def test_no_stored_facts_make_the_judgement_raise(facts: dict[str, Any],
                                                  error: str | None) -> None:
    from mdm.policies.compliance import judge

    effective = _constable()
    device = {"status": "enrolled", "last_seen": "2026-01-01T00:00:00Z",
              "last_contact_error": error}
    reasons = judge(device, facts, effective, "a" * 64, datetime(2026, 1, 2, tzinfo=UTC))
    assert all(set(r) == {"code", "detail"} and isinstance(r["detail"], str) for r in reasons)
