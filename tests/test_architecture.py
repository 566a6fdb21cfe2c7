"""The dependency rules of ARCHITECTURE.md, checked by walking the imports."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "mdm"
FEATURES = {"enrol", "policies", "officers", "devices", "custody", "operators", "audit",
            "rollout", "helpdesk", "apps"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _modules(folder: str) -> list[Path]:
    return sorted((PKG / folder).rglob("*.py"))


def test_store_and_fleet_import_no_feature_and_no_cli() -> None:
    for layer in ("store", "fleet"):
        for path in _modules(layer):
            for name in _imports(path):
                parts = name.split(".")
                assert not (parts[0] == "mdm" and len(parts) > 1 and
                            (parts[1] in FEATURES or parts[1] == "cli")), f"{path}: {name}"


def test_fleet_never_touches_the_database_and_store_never_ssh() -> None:
    for path in _modules("fleet"):
        assert not {n for n in _imports(path) if n.startswith(("mdm.store", "sqlite"))}, path
    for path in _modules("store"):
        assert not {n for n in _imports(path) if n.startswith(("paramiko", "mdm.fleet"))}, path


def test_only_ui_imports_rich_and_features_never_import_typer_outside_cli() -> None:
    for path in PKG.rglob("*.py"):
        names = _imports(path)
        if path.name != "ui.py":
            assert not {n for n in names if n.split(".")[0] == "rich"}, path
        if path.name not in ("cli.py", "cliopts.py", "docgen.py"):
            assert not {n for n in names if n.split(".")[0] == "typer"}, path


def test_domain_code_never_imports_the_cli() -> None:
    for path in PKG.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py", "docgen.py"):
            continue
        assert "mdm.cli" not in _imports(path), path


def test_host_keys_are_never_auto_accepted() -> None:
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        for policy in ("AutoAdd", "Warning"):  # spelled apart so this file is no match
            assert policy + "Policy" not in text, path
    assert "RejectPolicy()" in (PKG / "fleet" / "ssh.py").read_text()
