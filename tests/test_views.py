"""Fleet-wide views: each distinct change once, summaries on a terminal, every device on demand.

The fleet is set up straight in the inventory (devices enrolled, policies recorded as
applied, facts as a refresh would leave them), so these tests need no lab; what a push
or a refresh really does is tested against the lab in test_push_lab.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm import ui
from mdm.cli import app
from tests.helpers import Raw

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
REQUIRED = {"uk.police.cumbria.enotebook": 10402, "uk.police.cumbria.vpn": 1,
            "uk.police.mdm.dpc": 300}


def invoke(mdm: Any, *args: str) -> Any:
    """Run mdm; a compliance report may exit 1 (some device is not compliant)."""
    result = mdm.runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), f"{args}: {result.stdout}{result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@pytest.fixture
def fleet(mdm: Any, inventory: dict[str, Any], db_path: Path, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Eleven enrolled devices: seven nobody holds, two PCSOs', one Special's, and one
    never sent a policy; the other ten run the policy the tree gives them today."""
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    people = inventory["roster"]
    serials = sorted(d["serial_number"] for d in inventory["delivery"])[:11]
    pcsos = [p for p in people if p["worker_type"] == "PCSO"][:2]
    special = next(p for p in people if p["worker_type"] == "SPECIAL" and p["area"] != "HQ")
    holders = {serials[7]: pcsos[0], serials[8]: pcsos[1], serials[9]: special}
    conn = Raw(db_path)
    with conn:
        conn.executemany("UPDATE devices SET status = 'enrolled' WHERE serial = ?",
                         [(s,) for s in serials])
    for serial, person in holders.items():
        mdm("assign", serial, person["officer_id"])
    plan = mdm.json("policy", "push", "--check")["devices"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with conn:
        for sha in {r["to"] for r in plan}:
            example = next(r["serial"] for r in plan if r["to"] == sha)
            body = mdm("policy", "compile", "--device", example).stdout
            conn.execute("INSERT INTO policy_versions (sha256, body, layers, created_at,"
                         " created_by) VALUES (?, ?, 'test', ?, 'admin')", (sha, body, stamp))
        conn.executemany("UPDATE devices SET applied_policy = ? WHERE serial = ?",
                         [(r["to"], r["serial"]) for r in plan if r["serial"] != serials[10]])
    conn.close()
    return {"serials": serials, "unheld": serials[:7], "pcso": serials[7:9],
            "special": serials[9], "new": serials[10], "holders": holders,
            "folder": folder, "plan": {r["serial"]: r["to"] for r in plan}}


def _edit_baseline(folder: Path) -> None:
    baseline = folder / "00-baseline.yaml"
    baseline.write_text(baseline.read_text().replace("auto_lock_seconds: 120",
                                                     "auto_lock_seconds: 90"))


def _rows(text: str, delimiter: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


# -- policy diff --------------------------------------------------------------------------

@pytest.mark.backends
def test_diff_groups_devices_by_version_pair_with_a_count_and_examples(
        mdm: Any, fleet: dict[str, Any]) -> None:
    settled = mdm.json("policy", "diff")
    assert (settled["would_change"], settled["unchanged"]) == (1, 10)
    assert [(c["from"], c["devices"], c["examples"]) for c in settled["changes"]] == [
        (None, 1, [fleet["new"]])]
    assert settled["changes"][0]["fields"]  # never sent: every field is new
    assert all(f["from"] is None for f in settled["changes"][0]["fields"])

    _edit_baseline(fleet["folder"])
    result = mdm.json("policy", "diff")
    assert (result["selected"], result["would_change"], result["unchanged"]) == (11, 11, 0)
    counts = [(c["devices"], c["from"]) for c in result["changes"]]
    plan = fleet["plan"]
    assert counts == [(7, plan[fleet["unheld"][0]]), (2, plan[fleet["pcso"][0]]),
                      (1, None), (1, plan[fleet["special"]])]  # largest first
    unheld = result["changes"][0]
    assert unheld["examples"] == fleet["unheld"][:5]  # five examples of seven devices
    assert unheld["fields"] == [{"field": "maximumTimeToLock", "from": "120000",
                                 "to": "90000"}]
    assert unheld["from_known"] is True and unheld["policy"].endswith("/force-baseline")
    pcso = result["changes"][1]
    assert sorted(pcso["examples"]) == sorted(fleet["pcso"])
    assert pcso["policy"].endswith("/force-baseline.pcso")
    assert pcso["fields"] == unheld["fields"]
    assert pcso["to"] != unheld["to"]


@pytest.mark.backends
def test_diff_of_one_device_shows_its_change(mdm: Any, fleet: dict[str, Any]) -> None:
    _edit_baseline(fleet["folder"])
    whole = {c["to"]: c for c in mdm.json("policy", "diff")["changes"]}
    pcso = fleet["pcso"][1]
    one = mdm.json("policy", "diff", "--device", pcso.lower())  # any case, as typed
    assert (one["device"], one["selected"], one["would_change"]) == (pcso, 1, 1)
    [change] = one["changes"]
    assert (change["devices"], change["examples"]) == (1, [pcso])
    assert change["fields"] == whole[change["to"]]["fields"]
    assert change["from"] == fleet["plan"][pcso]
    mdm("policy", "diff", "--device", pcso)  # and printed on a terminal without error


@pytest.mark.backends
def test_diff_of_one_device_that_would_not_change_and_of_one_not_enrolled(
        mdm: Any, fleet: dict[str, Any], inventory: dict[str, Any]) -> None:
    settled = mdm.json("policy", "diff", "--device", fleet["special"])
    assert (settled["would_change"], settled["unchanged"], settled["changes"]) == (0, 1, [])
    delivered = sorted(d["serial_number"] for d in inventory["delivery"])[-1]
    err = mdm("policy", "diff", "--device", delivered, code=2).stderr
    assert f"device {delivered} is delivered" in err
    assert "not both" in mdm("policy", "diff", "all", "--device", delivered, code=2).stderr


# -- policy push --check ------------------------------------------------------------------

@pytest.mark.backends
def test_push_check_summarises_on_a_terminal_and_lists_every_device_on_demand(
        mdm: Any, fleet: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _edit_baseline(fleet["folder"])
    result = mdm.json("policy", "push", "--check")
    assert len(result["devices"]) == result["selected"] == 11  # JSON: every device
    assert [(c["devices"], c["examples"]) for c in result["changes"]][0] == \
        (7, fleet["unheld"][:5])
    assert sum(c["devices"] for c in result["changes"]) == result["would_change"] == 11
    # Piped: every device, tab-separated; --format csv the same as CSV.
    piped = _rows(mdm("policy", "push", "--check").stdout, "\t")
    assert [r["serial"] for r in piped] == [d["serial"] for d in result["devices"]]
    assert {r["change"] for r in piped} == {"true"}
    as_csv = _rows(mdm("policy", "push", "--check", "--format", "CSV").stdout, ",")
    assert [r["to"] for r in as_csv] == [d["to"] for d in result["devices"]]
    assert json.loads(mdm("policy", "push", "--check", "-f", "json").stdout) == result
    # On a terminal: the summary names at most five devices of each change; --all names all.
    monkeypatch.setattr(ui, "stdout_is_terminal", lambda: True)
    summary = mdm("policy", "push", "--check").stdout
    assert not set(fleet["unheld"][5:]) & set(summary.split())
    assert "7" in summary.split()
    every = mdm("policy", "push", "--check", "--all").stdout
    assert all(serial in every for serial in fleet["serials"])


@pytest.mark.backends
def test_push_list_options_go_with_check_and_formats_are_checked(mdm: Any,
                                                                 fleet: dict[str, Any]) -> None:
    assert "--check" in mdm("policy", "push", "--all", code=2).stderr
    err = mdm("policy", "push", "--check", "--format", "xml", code=2).stderr
    assert "tsv, csv, json" in err


# -- compliance report --------------------------------------------------------------------

def _healthy(conn: Raw, serial: str, sha: str, **change: Any) -> None:
    """Record facts that pass every check of the shipped policy (then apply `change`)."""
    today = datetime.now(UTC)
    facts = {"collected_at": today.strftime("%Y-%m-%dT%H:%M:%SZ"), "os_release": "6.0.1",
             "sdk": 23, "security_patch": today.date().isoformat(),
             "crypto_state": "encrypted", "packages": json.dumps(REQUIRED),
             "dpc_status": json.dumps({"policySha256": sha, "state": "APPLIED"}),
             "props": "{}", "settings": "{}", "policy_file_sha256": sha, **change}
    device_id = conn.execute("SELECT id FROM devices WHERE serial = ?", (serial,)).fetchone()[0]
    conn.execute("UPDATE devices SET last_seen = ? WHERE id = ?",
                 (facts["collected_at"], device_id))
    conn.execute(f"INSERT INTO device_facts (device_id, {', '.join(facts)}) VALUES"
                 f" (?, {', '.join('?' for _ in facts)})", (device_id, *facts.values()))


@pytest.mark.backends
def test_compliance_summarises_per_reason_and_station(mdm: Any, fleet: dict[str, Any],
                                                     db_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plan = fleet["plan"]
    conn = Raw(db_path)
    with conn:
        for serial in fleet["unheld"][:4] + fleet["pcso"]:
            _healthy(conn, serial, plan[serial])
        _healthy(conn, fleet["unheld"][4], plan[fleet["unheld"][4]], crypto_state="unencrypted")
        _healthy(conn, fleet["special"], plan[fleet["special"]], security_patch="2014-01-01",
                 crypto_state="unencrypted")
    conn.close()
    never = sorted(set(fleet["serials"]) - set(fleet["unheld"][:5] + fleet["pcso"]
                                                + [fleet["special"]]))
    result = json.loads(invoke(mdm, "compliance", "report", "--json").stdout)
    assert len(result["devices"]) == result["total"] == 11
    reasons = result["summary"]["reason"]
    assert reasons["never_reported"] == {"devices": 3, "examples": never}
    assert reasons["not_encrypted"] == {"devices": 2, "examples": sorted(
        [fleet["unheld"][4], fleet["special"]])}
    assert reasons["patch_too_old"] == {"devices": 1, "examples": [fleet["special"]]}
    assert result["compliant"] == 6
    stations = result["summary"]["station"]
    for serial in fleet["pcso"] + [fleet["special"]]:
        station = fleet["holders"][serial]["station"]
        expected = [s for s, p in fleet["holders"].items() if p["station"] == station]
        healthy = [s for s in expected if s != fleet["special"]]  # the Special's patch
        assert stations[station] == {"total": len(expected), "compliant": len(healthy),
                                     "non_compliant": len(expected) - len(healthy)}
    assert stations["(unassigned)"] == {"total": 8, "compliant": 4, "non_compliant": 4}
    # Every device, piped (TSV) or as CSV, with each device's reasons.
    tsv = {r["serial"]: r for r in _rows(invoke(mdm, "compliance", "report").stdout, "\t")}
    assert sorted(tsv) == fleet["serials"]
    assert tsv[fleet["special"]]["compliant"] == "false"
    assert tsv[fleet["special"]]["reasons"].startswith("patch_too_old: security patch 2014")
    as_csv = _rows(invoke(mdm, "compliance", "report", "--format", "csv").stdout, ",")
    assert sorted(r["serial"] for r in as_csv) == fleet["serials"]
    # On a terminal: the summary names at most five devices of each reason.
    monkeypatch.setattr(ui, "stdout_is_terminal", lambda: True)
    summary = invoke(mdm, "compliance", "report").stdout
    healthy_unheld = fleet["unheld"][:4]
    assert not set(healthy_unheld) & set(summary.replace(",", " ").split())
    every = invoke(mdm, "compliance", "report", "--all").stdout
    assert all(serial in every for serial in fleet["serials"])


@pytest.mark.backends
def test_the_terminal_summary_counts_what_the_whole_report_counts(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    """The summary a terminal shows is read lean (no device list): the same counts, the
    same examples, the same devices ready, for the whole fleet and for a selection."""
    from mdm.policies import report as reporter
    from mdm.store import connect

    plan, serials, folder = fleet["plan"], fleet["serials"], fleet["folder"]
    exception = fleet["unheld"][1]  # a device layer of its own: a camera fault
    (folder / "90-exception.yaml").write_text(
        f"layer: camera-fault\nkind: device\nmatch: [{exception}]\nreason: faulty camera\n"
        "expires: 2099-01-31\nsettings:\n  camera: disabled\n")
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", fleet["holders"][fleet["pcso"][0]]["officer_id"])
    conn = Raw(db_path)
    with conn:
        for serial in fleet["unheld"][:4] + fleet["pcso"]:
            _healthy(conn, serial, plan[serial])
        _healthy(conn, fleet["unheld"][4], plan[fleet["unheld"][4]], crypto_state="unencrypted")
        _healthy(conn, fleet["special"], plan[fleet["special"]], security_patch="2014-01-01")
        _healthy(conn, fleet["unheld"][5], plan[fleet["unheld"][5]], dpc_status="{not json")
        conn.execute("UPDATE devices SET status = 'quarantined' WHERE serial = ?",
                     (fleet["unheld"][2],))
        conn.execute("UPDATE devices SET status = 'provisioned', last_seen ="
                     " '2015-01-01T00:00:00Z' WHERE serial = ?", (fleet["unheld"][3],))
        conn.execute("UPDATE devices SET last_contact_error = 'malformed_output: junk'"
                     " WHERE serial = ?", (fleet["unheld"][0],))
    conn.close()
    db = connect(db_path)
    try:
        for selectors in ([], ["status=enrolled"], [f"serial={serials[0]}"]):
            whole = reporter.report(db, folder, selectors)
            assert len(whole.pop("devices")) == whole["total"]
            assert reporter.summarise(db, folder, selectors) == whole
            assert json.dumps(reporter.summarise(db, folder, selectors)) == json.dumps(whole)
        summary = reporter.summarise(db, folder, [])
        assert summary["total"] == 11 and summary["ready_to_provision"]
        assert set(summary["summary"]["reason"]) >= {
            "quarantined", "output_refused", "not_seen", "facts_unreadable", "not_encrypted",
            "patch_too_old", "never_reported"}
        assert summary["summary"]["group"]["pilot"]["total"] == 1
    finally:
        db.conn.close()


@pytest.mark.backends
def test_compliance_writes_every_device_to_a_file_in_the_format_its_name_says(
        mdm: Any, fleet: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.tsv"
    invoke(mdm, "compliance", "report", "-o", str(out))
    assert sorted(r["serial"] for r in _rows(out.read_text(), "\t")) == fleet["serials"]
    out = tmp_path / "report.json"
    invoke(mdm, "compliance", "report", "-o", str(out))
    assert len(json.loads(out.read_text())["devices"]) == 11


@pytest.mark.backends
def test_reading_the_whole_fleet_gives_what_the_selector_query_gives(
        mdm: Any, fleet: dict[str, Any], db_path: Path) -> None:
    from mdm.policies import service
    from mdm.store import connect

    db = connect(db_path)
    try:
        whole = service.devices(db, [])  # three scans, joined in Python
        selected = service.devices(db, ["status=enrolled"])  # one SQL join
        assert whole == selected and len(whole) == 11
        assert {r["serial"]: r["holder"] is not None for r in whole} == {
            s: s in fleet["holders"] for s in fleet["serials"]}
    finally:
        db.conn.close()


# -- the formats every device is listed in --------------------------------------------

# Nested, but bounded: unbounded (100 leaves a value, lists of dicts of such values) took
# hypothesis itself 1-2 s an example on a loaded machine, past the suite's 120 s timeout.
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(), inner, max_size=4), max_leaves=8)


@settings(deadline=None)  # a loaded machine must not fail it: the property is what counts
@given(st.dictionaries(st.text(), JSON_VALUES | st.lists(st.dictionaries(
    st.text(), JSON_VALUES, max_size=4), max_size=4), max_size=6))
def test_json_with_one_row_a_line_is_the_same_data_and_prints_no_control(data: Any) -> None:
    text = ui.json_rows_text(data)
    assert json.loads(text) == data
    assert text.replace("\n", "").isprintable()


@settings(deadline=None)
@given(st.lists(st.tuples(st.text(), st.none() | st.booleans() | st.integers() | st.text()
                          | st.lists(st.text()))))
def test_tsv_is_one_line_a_row_and_prints_no_control(rows: list[tuple[Any, Any]]) -> None:
    text = ui.tsv_text([{"a": a, "b": b} for a, b in rows], ["a", "b"])
    lines = text.split("\n")
    assert lines[0] == "a\tb" and lines[-1] == "" and len(lines) == len(rows) + 2
    assert all(ln.count("\t") == 1 and ln.replace("\t", "").isprintable() for ln in lines[1:-1])
    for line, (_, b) in zip(lines[1:-1], rows, strict=True):
        cell = line.split("\t")[1]
        if isinstance(b, bool):
            assert cell == ("true" if b else "false")
        elif b is None:
            assert cell == ""


# -- the compliance judge: each distinct meaning of the facts once ----------------------

def _effectives() -> list[Any]:
    from datetime import date

    from mdm.policies.layering import Subject, merge
    from mdm.policies.loader import load_tree

    layers, _ = load_tree(SHIPPED)
    return [merge(layers, Subject(worker_type=w, rank=r), date(2026, 1, 1))
            for w, r in (("OFFICER", "CONSTABLE"), ("PCSO", None))]


def _status(sha: str, at: str, state: str = "APPLIED", details: list[Any] | None = None) -> str:
    return json.dumps({"appliedAt": at, "nonComplianceDetails": details or [],
                       "policySha256": sha, "reportedAt": at, "state": state}, sort_keys=True)


SHA = "a" * 64
NOW = datetime(2026, 1, 2, tzinfo=UTC)
_facts = st.fixed_dictionaries({
    "dpc_status": st.sampled_from([
        None, "{}", "not json", "[1]", '{"appliedAt": "2026-01-01T00:00:00Z", "state": }',
        '{"appliedAt": "2026-01-01T00:00:00.25Z", "state": }',  # the error further on
        '{"appliedAt": "1", "appliedAt": "2"}', '{"reportedAt": "x\\"appliedAt\\": \\"1"}',
        '{"policySha256": "' + "a" * 64 + '", "reportedAt": 5}']) | st.builds(
        _status, st.sampled_from([SHA, "b" * 64]), st.sampled_from(
            ["2026-01-01T00:00:00Z", "2026-01-01T09:30:00Z"]), st.sampled_from(
            ["APPLIED", "ERROR"]), st.sampled_from([None, [{"settingName": "applications",
                                                           "packageName": "uk.police.x"}]])),
    "packages": st.sampled_from([json.dumps(REQUIRED), "{}", json.dumps({"a.b": 1}), "[]"]),
    "settings": st.sampled_from([None, "{}", json.dumps({"global.adb_enabled": "1"})]),
    "policy_file_sha256": st.sampled_from([None, SHA, "c" * 64]),
    "crypto_state": st.sampled_from([None, "encrypted", "unencrypted"]),
    "security_patch": st.sampled_from([None, "2025-12-01", "2015-01-01", "soon"]),
    "sdk": st.sampled_from([None, 23, 35, True, 35.0, "35"])})
_devices = st.lists(st.tuples(
    st.sampled_from(["enrolled", "quarantined"]),
    st.sampled_from([None, "2025-01-01T00:00:00Z", "2026-01-01T12:00:00Z"]),
    st.sampled_from([None, "malformed_output: x", "timeout: y"]),
    st.integers(0, 2), st.sampled_from([None, 35, 35.0, True, 1, "35"]), st.integers(0, 1)),
    max_size=12)


@settings(deadline=None)
@given(st.lists(_facts, min_size=1, max_size=2), _devices)
def test_one_judge_for_many_devices_judges_each_as_if_alone(pool: list[dict[str, Any]],
                                                            devices: list[Any]) -> None:
    from mdm.policies.compliance import FACTS, Judge, judge

    effectives = _effectives()
    shared = Judge(NOW)
    for status, seen, error, pick, sdk, which in devices:  # devices share facts, or not
        device = {"status": status, "last_seen": seen, "last_contact_error": error}
        facts = {**pool[pick], "sdk": sdk} if pick < len(pool) else None
        values = tuple(facts[c] for c in FACTS) if facts else None
        assert shared(device, values, effectives[which], SHA) == \
            judge(device, facts, effectives[which], SHA, NOW)


def test_devices_whose_facts_mean_the_same_are_judged_once(monkeypatch) -> None:
    from mdm.policies import compliance

    judged: list[dict[str, Any]] = []
    real = compliance._from_facts

    def counted(facts: dict[str, Any], *args: Any) -> Any:
        judged.append(facts)
        return real(facts, *args)

    monkeypatch.setattr(compliance, "_from_facts", counted)
    effective = _effectives()[0]
    judge = compliance.Judge(NOW)

    def facts(at: str, patch: str = "2025-12-01") -> tuple[Any, ...]:
        return (_status(SHA, at), json.dumps(REQUIRED), "{}", SHA, "encrypted", patch, 35)

    device = {"status": "enrolled", "last_seen": "2026-01-01T00:00:00Z",
              "last_contact_error": None}
    first = judge(device, facts("2026-01-01T08:00:00Z"), effective, SHA)
    # Another device, its DPC status written at another time: the same meaning.
    second = judge({**device, "status": "quarantined"}, facts("2026-01-01T09:00:00Z"),
                   effective, SHA)
    assert len(judged) == 1
    assert first == [] and [r["code"] for r in second] == ["quarantined"]
    old_patch = judge(device, facts("2026-01-01T08:00:00Z", "2015-01-01"), effective, SHA)
    assert len(judged) == 2 and [r["code"] for r in old_patch] == ["patch_too_old"]
    drifted = judge(device, (_status("b" * 64, "x"),) + facts("y")[1:], effective, SHA)
    assert len(judged) == 3 and "policy_drift" in [r["code"] for r in drifted]


def test_statuses_that_differ_only_in_times_share_a_parse_but_errors_keep_their_own() -> None:
    from mdm.policies.compliance import FACTS, Judge, judge

    effective = _effectives()[0]
    shared = Judge(NOW)
    device = {"status": "enrolled", "last_seen": None, "last_contact_error": None}
    for status in ('{"appliedAt": "2026-01-01T00:00:00Z", "state": }',
                   '{"appliedAt": "2026-01-01T00:00:00.25Z", "state": }',
                   _status(SHA, "2026-01-01T00:00:00Z"), _status(SHA, "2026-01-01T01:00:00Z")):
        facts = dict.fromkeys(FACTS) | {"dpc_status": status, "packages": json.dumps(REQUIRED)}
        alone = judge(device, facts, effective, SHA, NOW)
        assert shared(device, tuple(facts[c] for c in FACTS), effective, SHA) == alone


def test_bulk_work_pauses_the_cycle_collector_and_always_resumes_it() -> None:
    import gc

    from mdm.bulk import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
