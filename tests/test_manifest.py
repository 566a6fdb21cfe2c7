"""Supplier manifests: every row checked, all-or-nothing, spreadsheet damage caught."""

from __future__ import annotations

import pytest

from mdm import examples
from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends

COLS = examples.MANIFEST_COLUMNS


def test_import_lands_every_device_as_delivered(mdm, inventory, db_path) -> None:
    assert rows(db_path, "SELECT status, COUNT(*) FROM devices GROUP BY status") == [
        ("delivered", 20)]
    first = inventory["delivery"][0]
    shown = mdm.json("devices", "show", first["serial_number"])
    assert shown["imei1"] == first["imei1"] and shown["status"] == "delivered"
    assert shown["supplier"]["iccid"] == first["iccid"]  # kept as text, digits intact
    assert mdm.json("devices", "show", first["imei1"])["serial"] == first["serial_number"]


def test_spreadsheet_headers_and_text_cells(mdm, files, db_path) -> None:
    mdm("operators", "add", "admin")
    text = ("\ufeffSerial Number , IMEI 1,Manufacturer,MODEL,iccid\r\n"
            " R58F41ABC12 ,352549060000015,samsung,SM-N910F,0894400000000000001\r\n")
    mdm("enrol", "import", files("m.csv", text))
    assert rows(db_path, "SELECT serial, imei1, supplier FROM devices") == [
        ("R58F41ABC12", "352549060000015", '{"iccid": "0894400000000000001"}')]


def test_bad_rows_are_all_named_and_nothing_changes(mdm, inventory, files, db_path) -> None:
    batch = examples.generate_manifest(6, seed=3, first_snr=500)
    batch[0]["imei1"] = "3.52549E+14"
    batch[1]["imei1"] = batch[1]["imei1"][:-1] + str((int(batch[1]["imei1"][-1]) + 1) % 10)
    batch[2]["serial_number"] = batch[3]["serial_number"]
    batch[4]["imei1"] = inventory["delivery"][0]["imei1"]  # already in the inventory
    batch[5]["msisdn"] = batch[5]["msisdn"][1:]
    before = db_fingerprint(db_path)
    err = mdm("enrol", "import", files("bad.csv", batch, COLS), code=2).stderr
    assert "row 2, imei1" in err and "exponent" in err
    assert "row 3, imei1" in err and "check digit" in err
    assert "row 5, serial_number" in err and "also on row 4" in err
    assert "row 7, msisdn" in err and "leading zero" in err
    assert db_fingerprint(db_path) == before
    # Fix the file-level problems: the one clash with the inventory is still refused.
    batch = examples.generate_manifest(3, seed=3, first_snr=500)
    batch[1]["imei1"] = inventory["delivery"][0]["imei1"]
    err = mdm("enrol", "import", files("bad2.csv", batch, COLS), code=2).stderr
    assert "row 3, imei1" in err and inventory["delivery"][0]["serial_number"] in err
    assert db_fingerprint(db_path) == before


def test_imei2_shares_the_imei_namespace(mdm, inventory, files) -> None:
    batch = examples.generate_manifest(1, seed=8, first_snr=900)
    batch[0]["imei2"] = inventory["delivery"][3]["imei1"]
    err = mdm("enrol", "import", files("dual.csv", batch, COLS), code=2).stderr
    assert "row 2, imei2" in err


def test_missing_column_empty_and_binary_files(mdm, inventory, files, db_path) -> None:
    before = db_fingerprint(db_path)
    err = mdm("enrol", "import", files("nocol.csv", "serial_number,model\nX1234,Y\n"),
              code=2).stderr
    assert "'imei1' is missing" in err and "'manufacturer' is missing" in err
    assert "empty" in mdm("enrol", "import", files("empty.csv", ""), code=2).stderr
    assert "not a text file" in mdm("enrol", "import",
                                    files("blob.csv", b"PK\x03\x04\x00\x00"), code=2).stderr
    assert "cannot read" in mdm("enrol", "import", "/nonexistent/m.csv", code=2).stderr
    assert db_fingerprint(db_path) == before


def test_ten_thousand_rows_with_one_bad_row_change_nothing(mdm, inventory, files,
                                                           db_path) -> None:
    big = examples.generate_manifest(10_000, seed=21, first_snr=10_000)
    big[5_000]["imei1"] = "35254906001500"  # 14 digits, mid-file
    path = files("big.csv", big, COLS)
    before = db_fingerprint(db_path)
    err = mdm("enrol", "import", path, code=2).stderr
    assert "row 5002, imei1" in err
    assert db_fingerprint(db_path) == before
    # The same file minus a clash found only against the inventory (inside the write lock).
    big[5_000]["imei1"] = inventory["delivery"][5]["imei1"]
    err = mdm("enrol", "import", files("big2.csv", big, COLS), code=2).stderr
    assert "row 5002, imei1" in err and "already belongs" in err
    assert db_fingerprint(db_path) == before
