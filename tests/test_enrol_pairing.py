"""Pairing files and `enrol device` arguments are checked whole, before any device is reached.

No SSH here: a refused pairing must not even need the operator's key. The lab tests in
test_enrol_pairing_lab.py show the same refusals against real devices.
"""

from __future__ import annotations

import pytest

from mdm.enrol import identity, pairing
from tests.helpers import db_fingerprint

pytestmark = pytest.mark.backends

FP = "SHA256:" + "A" * 43
FP2 = "SHA256:" + "B" * 42 + "C"


def _serials(inventory) -> list[str]:
    return [r["serial_number"] for r in inventory["delivery"]]


def test_every_problem_in_a_pairing_file_is_named_at_once(mdm, inventory, files, tmp_path,
                                                          db_path, monkeypatch) -> None:
    monkeypatch.setenv("MDM_KEY", str(tmp_path / "no-such-key"))  # never needed
    s = _serials(inventory)
    text = ("serial_number,address,host_key\n"
            f"{s[0]},10.20.0.1:22,{FP}\n"            # row 2: key repeated on row 6
            f"{s[1]},10.20.0.2:70000,\n"             # row 3: port out of range
            f"{s[2]},10.20.0.300,\n"                 # row 4: not an IP address
            "NOSUCHSERIAL1,10.20.0.4,\n"             # row 5: not in the inventory
            f"{s[3]},10.20.0.5,{FP}\n"               # row 6: key repeated on row 2
            f"{s[4]},10.20.0.6,MD5:ab:cd\n"          # row 7: not a SHA256 fingerprint
            f"{s[5]},admin@10.20.0.7:22,\n"          # row 8: same host:port as row 9
            f"{s[6]},10.20.0.7,\n"                   # row 9
            f"{s[7].lower()},10.20.0.10,\n")         # row 10: serials are case-sensitive
    before = db_fingerprint(db_path)
    out = mdm.json("enrol", "devices", "--from", files("plan.csv", text),
                   "--trust-on-first-use", code=2)
    named = {(r["row"], r["field"], r["value"]) for r in out["refused"]}
    assert named == {
        (2, "host_key", FP), (6, "host_key", FP),
        (3, "address", "10.20.0.2:70000"), (4, "address", "10.20.0.300"),
        (5, "serial_number", "NOSUCHSERIAL1"), (7, "host_key", "MD5:ab:cd"),
        (8, "address", "admin@10.20.0.7:22"), (9, "address", "10.20.0.7"),
        (10, "serial_number", s[7].lower())}
    assert all(r["file"].endswith("plan.csv") and r["hint"] for r in out["refused"])
    by_row = {r["row"]: r for r in out["refused"]}
    assert "port 70000" in by_row[3]["message"] and "MD5" in by_row[7]["message"]
    assert s[7] in by_row[10]["hint"]  # did you mean the upper-case serial?
    assert out["done"] == [] and db_fingerprint(db_path) == before


def test_a_repeated_serial_names_both_rows(mdm, inventory, files, db_path) -> None:
    s = _serials(inventory)
    text = f"serial_number,address\n{s[0]},10.20.0.1\n{s[1]},10.20.0.2\n{s[0]},10.20.0.3\n"
    before = db_fingerprint(db_path)
    result = mdm("enrol", "devices", "--from", files("plan.csv", text), code=2)
    assert "row 2, serial_number" in result.stderr and "row 4, serial_number" in result.stderr
    assert "also given on row 4" in result.stderr
    assert db_fingerprint(db_path) == before


def test_enrol_device_checks_its_arguments_all_at_once(mdm, inventory, db_path) -> None:
    before = db_fingerprint(db_path)
    out = mdm.json("enrol", "device", "NOSUCHSERIAL1", "--address", "10.20.0.1:0",
                   "--host-key", "SHA256:short", code=2)
    assert {(r["field"], r["value"]) for r in out["refused"]} == {
        ("SERIAL", "NOSUCHSERIAL1"), ("--address", "10.20.0.1:0"),
        ("--host-key", "SHA256:short")}
    assert db_fingerprint(db_path) == before


# no inventory: the syntax alone
@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(("text", "ok"), [
    ("10.20.0.15", True), ("10.20.0.15:2222", True), ("it@10.20.0.15:22", True),
    ("[fe80::1]:22", True), ("phone-17.vpn.police.uk", True), ("phone.vpn.", True),
    ("10.20.0.15:0", False), ("10.20.0.15:65536", False), ("10.20.0.256", False),
    ("-bad-.vpn", False), ("a..b", False), ("10.20.0.15:22:22", False), ("", False),
    ("[zz::1]:22", False), ("host:port", False)])
def test_address_syntax(text: str, ok: bool) -> None:
    assert (pairing.address_problem(text) is None) is ok


# no inventory: the syntax alone
@pytest.mark.backends("sqlite")
def test_addresses_compare_by_host_and_port_not_spelling() -> None:
    assert pairing.address_key("it@10.20.0.15") == pairing.address_key("10.20.0.15:22")
    assert pairing.address_key("[FE80::0:1]:22") == pairing.address_key("[fe80::1]")
    assert pairing.address_key("Phone.VPN.:22") == pairing.address_key("phone.vpn")
    assert pairing.address_key("10.20.0.15:2222") != pairing.address_key("10.20.0.15")


# no inventory: the syntax alone
@pytest.mark.backends("sqlite")
def test_fingerprint_syntax() -> None:
    assert pairing.fingerprint_problem(FP) is None
    assert pairing.fingerprint_problem(FP2) is None
    for bad in ("SHA256:" + "A" * 42, "sha256:" + "A" * 43, "SHA256:" + "A" * 42 + "!",
                "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", FP + " "):
        assert pairing.fingerprint_problem(bad) is not None, bad


# no inventory: the syntax alone
@pytest.mark.backends("sqlite")
def test_identity_mismatches_name_each_field() -> None:
    want = identity.Identity("R58F41ABC12", "samsung", "SM-N910F",
                             ("352549060000015", "352549060000023"))
    props = {"ro.serialno": "R58F41ABC12", "ro.product.manufacturer": "Samsung",
             "ro.product.model": "sm-n910f"}
    assert identity.mismatches(want, identity.observed_of(props)) == []
    assert identity.mismatches(want, identity.observed_of(
        {**props, "persist.radio.imei": "352549060000023"})) == []  # the second IMEI
    assert identity.mismatches(want, identity.observed_of(
        {**props, "persist.radio.imei": "unknown"})) == []  # unreadable: not compared
    wrong = identity.mismatches(want, identity.observed_of(
        {**props, "ro.serialno": "r58f41abc12", "ro.product.model": "SM-G900F",
         "ro.ril.oem.imei": "352549060000031"}))
    assert [w.split(" is ")[0] for w in wrong] == ["serial", "model", "IMEI"]
    huge = identity.mismatches(want, identity.observed_of({**props, "ro.serialno": "X" * 10**6}))
    assert len(huge[0]) < 200  # a device cannot flood the report
