"""App builds without devices: registering real APKs, refusing bad ones, releasing them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends

ENOTEBOOK = "uk.police.cumbria.enotebook"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "builds"  # beside the inventory (MDM_DB is tmp_path/mdm.db)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_add_reads_the_apk_itself_and_stores_it_once_read_only(
        mdm: Any, apks: dict[str, Path], store: Path, db_path: Path) -> None:
    mdm("operators", "add", "admin")
    added = mdm.json("apps", "add", apks["enotebook-10500"], "--notes", "first pilot build")
    build = added["build"]
    assert added["added"] and build["package"] == ENOTEBOOK
    assert (build["version_code"], build["version_name"], build["min_sdk"]) == (10500, "1.5.0", 21)
    assert set(build["certificates"]) == {"V1", "V2", "V3"}
    assert build["signer"] == build["certificates"]["V3"][0] and len(build["signer"]) == 64
    kept = store / f"{build['sha256']}.apk"
    assert kept.read_bytes() == apks["enotebook-10500"].read_bytes()
    assert not os.access(kept, os.W_OK) or os.geteuid() == 0
    assert kept.stat().st_mode & 0o222 == 0
    again = mdm.json("apps", "add", apks["enotebook-10500"])
    assert not again["added"] and _files(store) == [kept.name]
    listed = mdm.json("apps", "list")
    assert [(b["version_code"], b["channels"]) for b in listed] == [(10500, "")]
    assert rows(db_path, "SELECT action, subject FROM audit WHERE action LIKE 'apps.%'") == [
        ("apps.add", f"app:{ENOTEBOOK}")]


@pytest.mark.parametrize("name, words", [
    ("truncated", "not a readable zip"), ("zip-bomb", "zip bomb"), ("empty", "0 bytes"),
    ("not-an-apk", "no AndroidManifest.xml"), ("enotebook-unsigned", "not signed"),
    ("missing", "no such file")])
def test_bad_files_are_refused_and_nothing_is_stored(
        mdm: Any, apks: dict[str, Path], store: Path, db_path: Path, tmp_path: Path,
        name: str, words: str) -> None:
    mdm("operators", "add", "admin")
    mdm("apps", "add", apks["enotebook-10500"])
    before, files = db_fingerprint(db_path), _files(store)
    path = apks.get(name, tmp_path / "nowhere.apk")
    result = mdm("apps", "add", path, "--json", code=2)
    error = json.loads(result.stderr)
    assert words in error["error"] and str(path) in error["error"] and error["what_to_do"]
    assert db_fingerprint(db_path) == before and _files(store) == files


def test_builds_are_immutable_and_keep_their_signer(
        mdm: Any, apks: dict[str, Path], store: Path, db_path: Path) -> None:
    mdm("operators", "add", "admin")
    mdm("apps", "add", apks["enotebook-10500"])
    before, files = db_fingerprint(db_path), _files(store)
    clash = mdm("apps", "add", apks["enotebook-10500-resigned"], code=2)
    assert "already registered with other bytes" in clash.stderr
    other = mdm("apps", "add", apks["enotebook-10700-other-signer"], code=2)
    assert "--new-signer" in other.stderr
    mdm("apps", "add", apks["enotebook-10700-other-signer"], "--new-signer", code=2)
    assert db_fingerprint(db_path) == before and _files(store) == files
    accepted = mdm.json("apps", "add", apks["enotebook-10700-other-signer"], "--new-signer",
                        "--reason", "the force's signing key was replaced")
    assert accepted["added"]
    (after,) = rows(db_path, "SELECT after FROM audit WHERE action = 'apps.add' ORDER BY seq"
                             " DESC LIMIT 1")[0]
    assert json.loads(after)["new_signer"]["reason"] == "the force's signing key was replaced"


def test_release_names_a_known_build_and_a_channel_the_policy_tree_names(
        mdm: Any, apks: dict[str, Path], db_path: Path) -> None:
    mdm("operators", "add", "admin")
    mdm("apps", "add", apks["enotebook-10500"])
    mdm("apps", "add", apks["enotebook-10600"])
    before = db_fingerprint(db_path)
    for args, words in ((["uk.police.nothing", "1", "--channel", "pilot"], "no builds"),
                        ([ENOTEBOOK, "99", "--channel", "pilot"], "registered: 10500, 10600"),
                        ([ENOTEBOOK, "10500", "--channel", "beta"], "no policy layer")):
        assert words in mdm("apps", "release", *args, code=2).stderr
    assert db_fingerprint(db_path) == before
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    shown = mdm.json("apps", "show", ENOTEBOOK)
    assert shown["channels"]["stable"]["version_code"] == 10600
    assert [h["version_code"] for h in shown["history"]] == [10500, 10600]
    assert {b["version_code"]: b["channels"] for b in shown["builds"]} == {
        10600: "stable", 10500: ""}


def test_a_rollback_goes_to_the_build_before_and_never_back_to_a_withdrawn_one(
        mdm: Any, apks: dict[str, Path], operator_key: Path, db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDM_KEY", str(operator_key))
    mdm("operators", "add", "admin")
    for name in ("enotebook-10500", "enotebook-10600"):
        mdm("apps", "add", apks[name])
    assert "never been released" in mdm("apps", "rollback", ENOTEBOOK, "--channel", "stable",
                                        "--reason", "x", code=2).stderr
    mdm("apps", "release", ENOTEBOOK, "10500", "--channel", "stable")
    assert "nothing to roll back to" in mdm("apps", "rollback", ENOTEBOOK, "--channel",
                                            "stable", "--reason", "x", code=2).stderr
    mdm("apps", "release", ENOTEBOOK, "10600", "--channel", "stable")
    assert "--reason" in mdm("apps", "rollback", ENOTEBOOK, "--channel", "stable", code=2).stderr
    back = mdm.json("apps", "rollback", ENOTEBOOK, "--channel", "stable", "--reason", "bad")
    assert (back["from"], back["to"], back["selected"]) == (10600, 10500, 0)
    before = db_fingerprint(db_path)
    assert "nothing to roll back to" in mdm("apps", "rollback", ENOTEBOOK, "--channel",
                                            "stable", "--reason", "again", code=2).stderr
    assert db_fingerprint(db_path) == before
    history = mdm.json("apps", "show", ENOTEBOOK)["history"]
    assert [(h["version_code"], h["rollback"], h["reason"]) for h in history] == [
        (10500, False, None), (10600, False, None), (10500, True, "bad")]


def test_a_newer_build_passes_only_if_registered_same_signer_and_not_rolled_back() -> None:
    from mdm.apps.releases import Release, Releases

    def release(code: int, signer: str = "a") -> Release:
        return Release(ENOTEBOOK, "stable", f"{code:064d}", code, None, signer, "", "", False,
                       None)

    known = Releases({("stable", ENOTEBOOK): release(10500)}, {("stable", ENOTEBOOK): {10700}},
                     {(ENOTEBOOK, 10500): "a", (ENOTEBOOK, 10600): "a", (ENOTEBOOK, 10650): "b",
                      (ENOTEBOOK, 10700): "a"})
    apps = {ENOTEBOOK: {"type": "required", "follows_channel": True}}

    def codes(have: int) -> list[str]:
        return [r["code"] for r in known.reasons("pilot", apps, {ENOTEBOOK: have})]

    assert codes(10500) == [] and codes(10600) == [] and codes(10400) == []
    assert codes(10650) == ["app_wrong_signer"]
    assert codes(10700) == ["app_rolled_back"]
    assert codes(10999) == ["app_unknown_build"]
