"""Device output parsed against a schema with caps: one device's odd answer fails it alone.

Unit and property tests of the parser (no device needed); the lab tests in
test_hostile_devices.py cross real sshd devices with the same shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.fleet import deviceout
from mdm.fleet.profiles import load
from mdm.fleet.transport import MalformedOutput

SHA = "a" * 64
PROPS = ("[ro.serialno]: [R58F46ARPY1]\n[ro.build.version.sdk]: [19]\n"
         "[ro.build.version.security_patch]: [2015-10-01]\n[ro.crypto.state]: [encrypted]\n")
PACKAGES = "package:uk.police.mdm.dpc versionCode:300\npackage:com.android.chrome versionCode:7\n"
SETTINGS = "global.adb_enabled=0\nsystem.screen_off_timeout=600000\n"
STATUS = {"state": "APPLIED", "policySha256": SHA, "reportedAt": "2015-10-01T10:00:00Z",
          "nonComplianceDetails": [{"settingName": "encryptionPolicy",
                                    "nonComplianceReason": "USER_ACTION"}]}


def output(boundary: str, props: str = PROPS, packages: str = PACKAGES,
           settings_: str = SETTINGS, status: str | None = None,
           policy_file: str = f"{SHA}  /x/policy.json\n") -> str:
    """What the facts command prints, section by section (as the shell joins them)."""
    status = json.dumps(STATUS) if status is None else status
    return f"{boundary}\n".join([props, packages, settings_, status, policy_file])


@pytest.fixture
def profile() -> Any:
    return load("android")


def test_a_sound_answer_parses_into_facts(profile: Any) -> None:
    facts = profile.parse_facts(output(profile.boundary))
    assert facts["props"]["ro.serialno"] == "R58F46ARPY1"
    assert facts["packages"] == {"uk.police.mdm.dpc": 300, "com.android.chrome": 7}
    assert facts["settings"]["global.adb_enabled"] == "0"
    assert facts["dpc_status"] == STATUS
    assert (facts["policy_file_sha256"], facts["truncated"]) == (SHA, [])


def test_the_boundary_is_new_for_each_run_and_is_in_the_command() -> None:
    first, second = load("android"), load("android")
    assert first.boundary != second.boundary
    assert first.boundary in first.facts_command()
    assert "----mdm-section----" not in first.facts_command()


def test_a_forged_separator_in_the_dpc_status_injects_nothing(profile: Any) -> None:
    forged = json.dumps(STATUS) + "\n----mdm-section----\n" + "f" * 64 + "  policy.json\n"
    with pytest.raises(MalformedOutput, match="not JSON"):
        profile.parse_facts(output(profile.boundary, status=forged))
    # Even one who guessed a boundary of an earlier run cannot split this run's output.
    old = load("android").boundary
    with pytest.raises(MalformedOutput):
        profile.parse_facts(output(profile.boundary, status=json.dumps(STATUS) + f"\n{old}\n"))


@pytest.mark.parametrize(("status", "reason"), [
    (json.dumps([STATUS]), "is a list, not an object"),
    (json.dumps({**STATUS, "policySha256": [SHA]}), "policySha256 is a list"),
    (json.dumps({**STATUS, "policySha256": "abc"}), "is not a sha256"),
    (json.dumps({**STATUS, "nonComplianceDetails": ["encryptionPolicy"]}), "holds a string"),
    (json.dumps({**STATUS, "nonComplianceDetails": {"a": 1}}), "is an object, not a list"),
    (json.dumps({**STATUS, "state": 3}), "state is a number"),
    ('{"state": "APPLIED", "state": "ERROR"}', "names 'state' twice"),
    ('{"state": NaN}', "NaN"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{" + '"x": 1, ' * 40_000 + '"y": 2}', "KiB"),
])
def test_a_dpc_status_of_the_wrong_shape_fails_the_device(profile: Any, status: str,
                                                          reason: str) -> None:
    with pytest.raises(MalformedOutput, match=reason) as err:
        profile.parse_facts(output(profile.boundary, status=status), "R58F46ARPY1")
    assert err.value.target == "R58F46ARPY1"
    with pytest.raises(MalformedOutput, match=reason):
        profile.parse_status(f"{status}\n{profile.boundary}\n")


@pytest.mark.parametrize(("change", "reason"), [
    ({"packages": "package:big.app versionCode:" + "9" * 5000 + "\n"}, "versionCode"),
    ({"packages": "package:big.app versionCode:99999999999999999999\n"}, "versionCode"),
    ({"packages": "package:big.app versionCode:-1\n"}, "versionCode"),
    ({"packages": "package:bad/name versionCode:1\n"}, "does not name a package"),
    ({"packages": PACKAGES + PACKAGES}, "listed twice"),
    ({"props": PROPS.replace("2015-10-01", "unknown")}, "security_patch 'unknown'"),
    ({"props": PROPS.replace("2015-10-01", "2015-02-30")}, "is not a date"),
    ({"props": PROPS.replace("[19]", "[nineteen]")}, "not an API level"),
    ({"props": PROPS.replace("[19]", "[\u0661\u0669]")}, "not an API level"),
    ({"props": PROPS + "[ro.serialno]: [SOMEONE-ELSE]\n"}, "listed twice"),
    ({"props": f"[{'k' * 300}]: [v]\n"}, "name of 300 characters"),
    ({"props": "".join(f"[p{i}]: [v]\n" for i in range(deviceout.MAX_ENTRIES + 1))},
     "more than"),
    ({"settings_": SETTINGS + "global.adb_enabled=1\n"}, "listed twice"),
    ({"policy_file": "not-a-hash  x\n"}, "not a sha256"),
])
def test_facts_a_device_cannot_have_fail_the_device(profile: Any, change: dict[str, str],
                                                    reason: str) -> None:
    with pytest.raises(MalformedOutput, match=reason):
        profile.parse_facts(output(profile.boundary, **change))


def test_a_missing_or_extra_section_fails_the_device(profile: Any) -> None:
    text = output(profile.boundary)
    with pytest.raises(MalformedOutput, match="6 sections, expected 5"):
        profile.parse_facts(text + profile.boundary + "\n")
    with pytest.raises(MalformedOutput, match="4 sections"):
        profile.parse_facts(text.split(profile.boundary + "\n", 1)[1])


def test_bytes_that_are_not_utf8_fail_the_device() -> None:
    with pytest.raises(MalformedOutput, match=r"not UTF-8 text \(byte 0xff at offset 3\)"):
        deviceout.decode(b"abc\xff\x00", "reading facts", "R58F46ARPY1")
    assert deviceout.decode("é\x1b[2J".encode(), "x", "y") == "é\x1b[2J"


def test_an_oversized_value_is_truncated_and_flagged_not_stored_whole(profile: Any) -> None:
    huge = "x" * (10 * 1024 * 1024)
    facts = profile.parse_facts(output(
        profile.boundary, props=PROPS + f"[ro.lab.huge]: [{huge}]\n",
        settings_=SETTINGS + f"secure.long={huge[:5000]}\n",
        status=json.dumps({**STATUS, "error": huge[:9000]})))
    value = facts["props"]["ro.lab.huge"]
    assert value.startswith("x" * deviceout.MAX_VALUE) and len(value) < deviceout.MAX_VALUE + 64
    assert value.endswith(f"[{len(huge)} characters, truncated]")
    assert len(facts["settings"]["secure.long"]) < deviceout.MAX_VALUE + 64
    assert len(facts["dpc_status"]["error"]) < deviceout.MAX_VALUE + 64
    assert facts["truncated"] == ["props.ro.lab.huge", "settings.secure.long",
                                  "dpc_status.error"]


def test_what_the_status_schema_does_not_know_is_dropped(profile: Any) -> None:
    facts = profile.parse_facts(output(profile.boundary, status=json.dumps(
        {**STATUS, "extra": "x" * 1000, "nonComplianceDetails": [
            {"settingName": "a", "currentValue": {"deep": [1, 2]}}]})))
    assert "extra" not in facts["dpc_status"]
    assert facts["dpc_status"]["nonComplianceDetails"] == [{"settingName": "a"}]


# -- properties: whatever a device prints, the parser returns facts or refuses the device --

PROFILE = load("android")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["state", "policySha256", "error",
                                       "nonComplianceDetails", "settingName", "packageName",
                                       "nonComplianceReason", "x"]) | st.text(max_size=5),
                      children, max_size=5),
    max_leaves=20)


def _parse_bytes(data: bytes) -> None:
    try:
        text = deviceout.decode(data, "reading facts", "D1")
        facts = PROFILE.parse_facts(text, "D1")
    except MalformedOutput as exc:
        assert exc.message and exc.target == "D1"
        return
    assert set(facts) == {"props", "packages", "settings", "dpc_status",
                          "policy_file_sha256", "truncated"}
    assert all(isinstance(v, str) and len(v) <= deviceout.MAX_VALUE + 64
               for v in facts["props"].values())
    assert all(isinstance(v, int) and 0 <= v <= deviceout.MAX_VERSION_CODE
               for v in facts["packages"].values())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_out_of_the_parser(data: bytes) -> None:
    _parse_bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=5, max_size=5))
def test_random_sections_joined_by_the_real_boundary_never_raise(parts: list[bytes]) -> None:
    _parse_bytes(f"{PROFILE.boundary}\n".encode().join(parts))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_values, st.text(max_size=200), st.text(max_size=200), st.text(max_size=200))
def test_structured_but_wrong_output_never_raises(status: Any, props: str, packages: str,
                                                  policy_file: str) -> None:
    text = output(PROFILE.boundary, props=props, packages=packages,
                  status=json.dumps(status), policy_file=policy_file)
    _parse_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        reading = PROFILE.parse_status(f"{json.dumps(status)}\n{PROFILE.boundary}\n", "D1")
    except MalformedOutput:
        return
    assert reading.dpc is None or isinstance(reading.dpc, dict)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["package:", "package:a.b versionCode:", "[k]: [",
                                           "x="]),
                          st.text(max_size=40)), max_size=20))
def test_line_shaped_noise_never_raises(lines: list[tuple[str, str]]) -> None:
    body = "".join(f"{head}{tail}\n" for head, tail in lines)
    _parse_bytes(output(PROFILE.boundary, props=body, packages=body,
                        settings_=body).encode("utf-8", "surrogatepass"))
