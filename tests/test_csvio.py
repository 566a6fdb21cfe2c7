"""CSV as spreadsheets write it in, and spreadsheet-safe CSV out."""

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm import csvio
from mdm.errors import InputError


@given(st.text())
def test_no_exported_cell_can_start_a_formula(value: str) -> None:
    text = csvio.write_csv([{"a": value}], ["a"])
    cell = list(csv.reader(io.StringIO(text, newline="")))[1][0]
    assert not cell.startswith(csvio.FORMULA_TRIGGERS)
    assert cell == ("'" + value if value.startswith(csvio.FORMULA_TRIGGERS) else value)


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r"])
def test_each_trigger_is_neutralised(trigger: str) -> None:
    assert csvio.neutralise(trigger + "HYPERLINK(1)") == "'" + trigger + "HYPERLINK(1)"


def test_spreadsheet_export_quirks_are_read(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbf Serial Number ,IMEI1\r\n  R58F41ABC12 , 0123 \r\n\r\n")
    rows = csvio.read_rows(path, ["serial_number", "imei1"])
    assert [r.values for r in rows] == [{"serial_number": "R58F41ABC12", "imei1": "0123"}]
    assert rows[0].line == 2


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "empty"),
    (b"a,b\r\n", "no rows"),
    (b"a,b\x00\n1,2\n", "not a text file"),
    (b"a,b\n\xff\xfe,2\n", "not UTF-8"),
    (b"serial_number\nx,y,z\n", "3 cells but 1 columns"),
    (b"other\nx\n", "required column 'serial_number' is missing"),
])
def test_unusable_files_are_refused_with_the_reason(tmp_path: Path, content: bytes,
                                                    needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        csvio.read_rows(path, ["serial_number"] if b"serial" in content or b"other" in content
                        else [])
    text = str(err.value) + " ".join(str(p) for p in err.value.problems)
    assert needle in text
