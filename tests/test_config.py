"""One place for settings: mdm.toml found by walking up, options and MDM_* winning, init."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mdm import __version__


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with an mdm.toml, and the current folder two levels below it."""
    for name in ("MDM_CONFIG", "MDM_DB"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "force"
    (root / "a" / "b").mkdir(parents=True)
    (root / "mdm.toml").write_text(
        "# the force's project\n"
        'inventory = "force.db"\n'
        "wait = 12\n"
        "[policy]\n"
        'enterprise_id = "LC0cumbria1"\n'
        "[policy.tracks]\n"
        'pilot = "4697111111111111111"\n')
    monkeypatch.chdir(root / "a" / "b")
    return root


def show(mdm: Any, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(mdm(*args, "config", "show", "--json").stdout)
    return result


def test_the_project_file_is_found_by_walking_up_and_its_paths_are_relative_to_it(
        mdm: Any, project: Path) -> None:
    result = show(mdm)
    settings = result["settings"]
    assert result["file"] == str(project / "mdm.toml")
    assert settings["inventory"] == {**settings["inventory"],
                                     "value": str(project / "force.db"),
                                     "source": f"{project / 'mdm.toml'}:2"}
    assert settings["wait"]["value"] == 12
    assert settings["wait"]["source"].endswith("mdm.toml:3")
    assert settings["policy.enterprise_id"]["value"] == "LC0cumbria1"
    assert settings["policy.enterprise_id"]["source"].endswith("mdm.toml:5")
    assert settings["policy.tracks"]["value"] == {"pilot": "4697111111111111111"}
    # what the file leaves out defaults to the project's folder, not the current one
    assert settings["policies"] == {**settings["policies"], "source": "default",
                                    "value": str(project / "playbooks" / "policies")}
    # and commands use it: the inventory is created in the project, not here
    mdm("operators", "add", "admin")
    assert (project / "force.db").exists()
    assert not (project / "a" / "b" / "inventory").exists()


def test_options_beat_variables_which_beat_the_file(mdm: Any, project: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDM_DB", "env.db")
    monkeypatch.setenv("MDM_WAIT", "5")
    monkeypatch.setenv("MDM_TRACKS", "pilot/uk.police.cumbria.enotebook=4697222222222222222")
    settings = show(mdm)["settings"]
    assert (settings["inventory"]["value"], settings["inventory"]["source"]) == (
        "env.db", "env MDM_DB")
    assert (settings["wait"]["value"], settings["wait"]["source"]) == (5, "env MDM_WAIT")
    assert settings["policy.tracks"]["value"] == {
        "pilot": {"uk.police.cumbria.enotebook": "4697222222222222222"}}
    settings = show(mdm, "--db", "option.db")["settings"]
    assert (settings["inventory"]["value"], settings["inventory"]["source"]) == (
        "option.db", "option --db")
    assert settings["operator"]["source"] == "env MDM_OPERATOR"


def test_without_a_project_file_the_old_defaults_hold(mdm: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MDM_CONFIG", "MDM_DB", "MDM_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mdm.toml").unlink()
    result = show(mdm)
    assert result["file"] is None
    assert {k: v["value"] for k, v in result["settings"].items()
            if k in ("inventory", "policies", "lab", "builds", "wait", "timezone")} == {
        "inventory": "inventory/mdm.db", "policies": "playbooks/policies",
        "lab": "inventory/lab", "builds": "inventory/builds", "wait": 30,
        "timezone": "Europe/London"}
    assert {v["source"] for v in result["settings"].values()} == {"default", "env MDM_OPERATOR"}


def test_unknown_keys_and_bad_values_are_refused_with_file_and_line(
        mdm: Any, project: Path) -> None:
    path = project / "mdm.toml"
    path.write_text('inventory = "force.db"\ninvntory = "x.db"\noperator = "jsmith"\n'
                    "[policy]\nenterprise = \"LC01\"\n"
                    "[roles]\n\"groups.manage\" = [\"superuser\"]\n")
    err = mdm("config", "show", code=2).stderr
    assert f"{path}:2, invntory: is not a setting — did you mean 'inventory'?" in err
    assert f"{path}:3, operator: is personal" in err
    assert f"{path}:5, policy.enterprise: is not a setting" in err
    assert f"{path}:7, roles: groups.manage: give a list of roles from admin" in err
    assert "4 problem(s)" in err
    # every command refuses it, and nothing is created
    mdm("operators", "list", code=2)
    assert not (project / "force.db").exists()
    path.write_text('wait = "soon"\n[policy]\nenterprise_id = "enterprises/LC01"\n')
    err = mdm("config", "show", code=2).stderr
    assert f"{path}:1, wait: must be a whole number of seconds" in err
    assert f"{path}:3, policy.enterprise_id: give only the id, without enterprises/" in err
    path.write_text("wait = \n")
    assert "is not valid TOML" in mdm("config", "show", code=2).stderr


def test_mdm_config_names_the_file_outright(mdm: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDM_CONFIG", str(tmp_path / "nowhere.toml"))
    assert "is not a file" in mdm("config", "show", code=2).stderr


def test_role_rules_in_the_project_file_replace_the_built_in_ones(
        mdm: Any, tmp_path: Path) -> None:
    mdm("operators", "add", "admin")
    mdm("operators", "add", "rm.jones", "--role", "rollout")
    mdm("groups", "create", "pilot", operator="rm.jones")
    with (tmp_path / "mdm.toml").open("a") as fh:
        fh.write('[roles]\n"groups.manage" = ["admin"]\n')
    err = mdm("groups", "create", "wave1", operator="rm.jones", code=2).stderr
    assert "groups.manage needs the admin role" in err
    mdm("groups", "create", "wave1")


def test_init_writes_a_commented_file_and_never_overwrites_without_force(
        mdm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MDM_CONFIG", "MDM_DB"):
        monkeypatch.delenv(name)
    folder = tmp_path / "new"
    folder.mkdir()
    monkeypatch.chdir(folder)
    mdm("init")
    text = (folder / "mdm.toml").read_text()
    assert '# enterprise_id = "LC0123abcd"' in text and text.count("\n#") > 20
    settings = show(mdm)["settings"]
    assert settings["inventory"]["value"] == str(folder / "inventory" / "mdm.db")
    assert settings["policy.enterprise_id"]["value"] is None
    assert "already exists" in mdm("init", "--enterprise-id", "LC0new", code=2).stderr
    assert (folder / "mdm.toml").read_text() == text
    assert "not an enterprise id" in mdm("init", "--force", "--enterprise-id", "LC 0",
                                         code=2).stderr
    assert (folder / "mdm.toml").read_text() == text
    mdm("init", "--force", "--enterprise-id", "LC0new1", "--track", "pilot=4697333")
    settings = show(mdm)["settings"]
    assert settings["policy.enterprise_id"]["value"] == "LC0new1"
    assert settings["policy.tracks"]["value"] == {"pilot": "4697333"}
    # a broken file can still be replaced
    (folder / "mdm.toml").write_text("nonsense = [\n")
    mdm("init", "--force")
    assert show(mdm)["file"] == str(folder / "mdm.toml")
    (tmp_path / "other").mkdir()
    assert "stable is Google Play's production track" in mdm(
        "init", str(tmp_path / "other"), "--track", "stable=1", code=2).stderr
    assert not (tmp_path / "other" / "mdm.toml").exists()


def test_builds_and_lab_default_to_folders_beside_the_inventory(
        mdm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MDM_CONFIG", "MDM_DB"):
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    demo = tmp_path / "inventory" / "demo"  # as the demo does: its project in a sub-folder
    demo.mkdir(parents=True)
    mdm("init", str(demo))
    monkeypatch.setenv("MDM_CONFIG", str(demo / "mdm.toml"))
    monkeypatch.setenv("MDM_DB", str(demo / "mdm.db"))
    settings = show(mdm)["settings"]
    assert (settings["builds"]["value"], settings["builds"]["source"]) == (
        str(demo / "builds"), "default")
    assert settings["lab"]["value"] == str(demo / "lab")
    monkeypatch.delenv("MDM_DB")  # the file's own inventory, relative to the file
    settings = show(mdm)["settings"]
    assert settings["inventory"]["value"] == str(demo / "inventory" / "mdm.db")
    assert settings["builds"]["value"] == str(demo / "inventory" / "builds")
    (demo / "mdm.toml").write_text('inventory = "data/force.db"\nbuilds = "apks"\n')
    settings = show(mdm)["settings"]
    assert settings["lab"]["value"] == str(demo / "data" / "lab")
    assert (settings["builds"]["value"], settings["builds"]["source"]) == (
        str(demo / "apks"), f"{demo / 'mdm.toml'}:2")


def test_version(mdm: Any) -> None:
    assert mdm("--version").stdout.strip() == f"mdm {__version__}"


def test_the_lab_module_finds_its_folder_as_the_settings_name_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mdm.lab.lab import Lab

    for name in ("MDM_CONFIG", "MDM_DB"):
        monkeypatch.delenv(name)
    force = tmp_path / "force"
    (force / "a").mkdir(parents=True)
    (force / "mdm.toml").write_text('inventory = "data/force.db"\n')
    monkeypatch.chdir(force / "a")
    assert Lab().root == force / "data" / "lab"  # beside the inventory, not ./inventory/lab
    (force / "mdm.toml").write_text('inventory = "data/force.db"\nlab = "rehearsal"\n')
    assert Lab().root == force / "rehearsal"
    monkeypatch.setenv("MDM_LAB", str(tmp_path / "elsewhere"))
    assert Lab().root == tmp_path / "elsewhere"
