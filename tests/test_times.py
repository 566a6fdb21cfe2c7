"""Local times the clocks skip or repeat are refused: an evidential record never guesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mdm.errors import InputError
from mdm.timeutil import parse_instant


def test_a_time_the_clocks_repeat_or_skip_is_refused_asking_for_an_offset(
        mdm: Any, inventory: dict[str, Any]) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    twice = mdm("custody", serial, "--at", "2015-10-25T01:30", code=2).stderr
    assert "happened twice in Europe/London" in twice
    assert "2015-10-25T01:30+01:00" in twice and "2015-10-25T01:30+00:00" in twice
    never = mdm("custody", serial, "--at", "2015-03-29T01:30", code=2).stderr
    assert "never happened in Europe/London" in never
    # with the offset given, each is one instant
    assert mdm.json("custody", serial, "--at", "2015-10-25T01:30+01:00")["at"] == \
        "2015-10-25T00:30:00.000000Z"
    assert mdm.json("custody", serial, "--at", "2015-10-25T01:30Z")["at"] == \
        "2015-10-25T01:30:00.000000Z"


@pytest.mark.parametrize("text, utc", [
    ("2015-10-25T00:59", "2015-10-24T23:59:00.000000Z"),  # BST, before the change
    ("2015-10-25T02:00", "2015-10-25T02:00:00.000000Z"),  # GMT, after it
    ("2015-03-29T00:59", "2015-03-29T00:59:00.000000Z"),  # GMT
    ("2015-03-29T02:00", "2015-03-29T01:00:00.000000Z"),  # BST
])
def test_times_either_side_of_a_change_are_unambiguous(text: str, utc: str) -> None:
    assert parse_instant(text) == utc


@pytest.mark.parametrize("text", ["2015-10-25T01:00", "2015-10-25T01:59:59",
                                  "2015-03-29T01:00", "2015-03-29T01:59"])
def test_the_whole_repeated_or_skipped_hour_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="happened twice|never happened") as caught:
        parse_instant(text)
    assert "give the offset you mean" in caught.value.hint


def test_the_local_zone_comes_from_the_settings(mdm: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with (tmp_path / "mdm.toml").open("r+") as fh:
        text = fh.read()
        fh.seek(0)
        fh.write('timezone = "America/New_York"\n' + text)
    assert parse_instant("2015-10-25T01:30") == "2015-10-25T05:30:00.000000Z"
    with pytest.raises(InputError, match="happened twice in America/New_York"):
        parse_instant("2015-11-01T01:30")
    monkeypatch.setenv("MDM_TIMEZONE", "Mars/Olympus")
    assert "not a time zone" in mdm("custody", "X", "--at", "2015-04-03T14:32", code=2).stderr


def test_custody_refuses_an_instant_in_the_future(mdm, inventory) -> None:
    serial = inventory["delivery"][0]["serial_number"]
    err = mdm("custody", serial, "--at", "9999-12-31T23:59Z", code=2).stderr
    assert "in the future" in err
