"""Hostile YAML: every file mdm reads refuses what would silently change or crash it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mdm import yamlio
from mdm.errors import InputError
from mdm.fleet import profiles

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(f"{chr(c)}: &{chr(c)} [{', '.join(['*' + chr(c - 1)] * 9)}]\n"
                  for c in range(ord("b"), ord("j"))))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mdm: Any,
         inventory: dict[str, Any]) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    mdm("groups", "create", "pilot")
    mdm("groups", "add", "pilot", *[p["officer_id"] for p in inventory["roster"][:5]])
    return folder


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_baseline_that_says_a_setting_twice_fails_naming_both_lines(mdm: Any,
                                                                     tree: Path) -> None:
    base = tree / "00-baseline.yaml"
    text = base.read_text()
    first = _line_of(text, "developer_options: false")
    text = text.replace("  developer_options: false",
                        "  developer_options: false\n  developer_options: true")
    base.write_text(text)
    err = mdm("policy", "validate", code=2).stderr
    assert (f"00-baseline.yaml, line {first + 1}: key 'developer_options' is given twice"
            f" (first on line {first})") in err


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  camera: " + "[" * 5000
     + "]" * 5000 + "\n", 5, "nested more than"),
    ("layer: x\nkind: device\nmatch: [R1]\nreason: broken\nexpires: 2015-02-30\n"
     "settings: {camera: disabled}\n", 5, "'2015-02-30' is not a real date"),
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  password:\n    min_length: "
     + "9" * 5000 + "\n", 6, "is too large"),
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  lock:\n    auto_lock_seconds: "
     "99999999999999999999\n", 6, "is too large"),
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings: {camera: allowed, camera: disabled}\n",
     4, "key 'camera' is given twice"),
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  <<: {camera: allowed}\n", 5,
     "merge key"),
    ("layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  lock:\n    message: \"a\x1b]0;b\"\n",
     6, "is not valid YAML"),
])
def test_hostile_layers_exit_2_with_file_and_line(mdm: Any, tree: Path, text: str, line: int,
                                                  needle: str) -> None:
    (tree / "60-hostile.yaml").write_text(text)
    err = mdm("policy", "validate", code=2).stderr
    assert f"60-hostile.yaml, line {line}:" in err
    assert needle in err


def test_a_layer_that_is_not_utf8_names_its_line(mdm: Any, tree: Path) -> None:
    (tree / "60-latin1.yaml").write_bytes(
        "layer: x\nkind: area\nmatch: [NORTH]\nsettings:\n  lock:\n    message: café\n"
        .encode("latin-1"))
    err = mdm("policy", "validate", code=2).stderr
    assert "60-latin1.yaml, line 6: is not UTF-8 text" in err


def test_a_huge_layer_is_refused_unread(mdm: Any, tree: Path) -> None:
    (tree / "60-huge.yaml").write_text("# " + "x" * (yamlio.MAX_BYTES + 10) + "\n")
    assert "60-huge.yaml: is larger than 256 KiB" in mdm("policy", "validate", code=2).stderr


def test_a_folder_named_like_a_layer_is_a_clear_error(mdm: Any, tree: Path) -> None:
    (tree / "60-folder.yaml").mkdir()
    assert "60-folder.yaml: cannot be read" in mdm("policy", "validate", code=2).stderr


@pytest.fixture(params=["libyaml", "pure"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each check on both parsers: libyaml's where PyYAML has it, the pure one where not."""
    if request.param == "pure":
        monkeypatch.setattr(yamlio, "CStrictLoader", None)
    return str(request.param)


def test_libyaml_parses_where_pyyaml_has_it() -> None:
    import yaml

    assert (yamlio.CStrictLoader is not None) == yaml.__with_libyaml__


@pytest.mark.parametrize(("text", "needle"), [
    ("a: 1\nb: 2\na: 3\n", "line 3: key 'a' is given twice (first on line 1)"),
    ("yes: 1\ntrue: 2\n", "line 2: key 'true' is given twice"),
    ("a: {x: 1, x: 2}\n", "line 1: key 'x' is given twice"),
    ("a: .inf\n", "line 1: '.inf' is not a finite number"),
    ("a: 1.0e+999\n", "is not a finite number"),
    ("a: !!binary aGVsbG8=\n", "line 1: uses the tag !!binary"),
    ("a: !!set {x, y}\n", "line 1: uses the tag !!set"),
    ("a: !!python/name:os.system\n", "line 1: is not valid YAML"),
    ("a: 1\n---\nb: 2\n", "line 2: is not valid YAML"),
    ("a: 2015-13-01\n", "'2015-13-01' is not a real date"),
    ("- " * 100 + "x\n", "nested more than 32 levels deep"),
    ("a: " + "{a: " * 40 + "1" + "}" * 40 + "\n", "nested more than 32 levels deep"),
    (BOMB, "line 1: uses a YAML anchor or alias"),
    ("? [a, b]\n: 1\n", "is not valid YAML"),
    ("a: " + "[" * 200_000 + "\n", "line 1: is nested more than 32 levels deep"),
    ("a: b\nc: \x01\n", "line 2: is not valid YAML"),
    ("a: [1,\n  2\n b: c\n", "line 3: is not valid YAML"),
    ("a:\t1\n", "line 1: is not valid YAML: found character '\\t'"),
    ("m: Property of\tCumbria\n", "line 1: is not valid YAML: found character '\\t'"),
    ("l: true \t# c\n", "line 1: is not valid YAML"),
    ("# é—漢\n" * 3 + "a: \x0c\n", "line 4: is not valid YAML"),
    ("x: !!int abc\n", "line 1: 'abc' is not what its tag !!int says"),
    ("x:\n  y: !!bool maybe\n", "line 2: 'maybe' is not what its tag !!bool says"),
])
def test_the_strict_loader_refuses_with_the_line(parser: str, text: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        yamlio.loads(text, "f.yaml")
    assert needle in err.value.message


@pytest.mark.parametrize(("text", "data"), [
    ("%YAML 1.1\n---\na: 1\n", {"a": 1}),
    ("a: ! \n", {"a": None}),
    ("a: 1\n\ufeffb: 2\n", {"a": 1, "\ufeffb": 2}),
    ('a: "Call 101!" # now!\n', {"a": "Call 101!"}),
])
def test_both_parsers_read_what_the_pure_parser_reads(parser: str, text: str,
                                                      data: object) -> None:
    assert yamlio.loads(text, "f.yaml").data == data


def test_the_strict_loader_keeps_ordinary_yaml_and_key_lines(parser: str) -> None:
    doc = yamlio.loads("a: 1\nb:\n  c: 2015-02-28\n  d: [x, 'y']\ne: -1.5\n", "f.yaml")
    assert doc.data == {"a": 1, "b": {"c": __import__("datetime").date(2015, 2, 28),
                                      "d": ["x", "y"]}, "e": -1.5}
    assert doc.lines == {("a",): 1, ("b",): 2, ("b", "c"): 3, ("b", "d"): 4,
                         ("b", "d", "0"): 4, ("b", "d", "1"): 4, ("e",): 5}
    listed = yamlio.loads("waves:\n  - name: a\n\n  - name: b\n    size: 2\n", "f.yaml")
    assert listed.lines == {("waves",): 1, ("waves", "0"): 2, ("waves", "0", "name"): 2,
                            ("waves", "1"): 4, ("waves", "1", "name"): 4,
                            ("waves", "1", "size"): 5}


def _profile(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text((profiles.BUILTIN / "android.yaml").read_text() + extra)
    return path


@pytest.mark.parametrize(("extra", "needle"), [
    ("name: other\n", "key 'name' is given twice"),
    (BOMB, "uses a YAML anchor or alias"),
    ("extra: 2015-02-30\n", "is not a real date"),
])
def test_device_profiles_are_read_strictly(tmp_path: Path, extra: str, needle: str) -> None:
    path = _profile(tmp_path, extra)
    with pytest.raises(InputError) as err:
        profiles.load(str(path))
    assert f"{path}, line " in err.value.message and needle in err.value.message


def test_a_device_profile_that_is_not_a_mapping_or_too_big_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="must be a mapping"):
        profiles.load(str(listed))
    huge = _profile(tmp_path, "# " + "x" * yamlio.MAX_BYTES + "\n")
    with pytest.raises(InputError, match="larger than 256 KiB"):
        profiles.load(str(huge))
