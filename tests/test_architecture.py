"""The dependency rules of ARCHITECTURE.md, checked by walking the imports.

Layers: cli → features → device driver → (fleet, store), nothing back up, and no import
circle anywhere — an import inside a function counts like any other, since it only hides
a circle until the day the function runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "mdm"
BELOW = {"fleet", "store"}  # reach devices, keep the inventory; know no feature
DRIVER = "driver"
# Every other package is a feature (groups, lab, keys, runs … and any added later).
FEATURES = {p.parent.name for p in PKG.glob("*/__init__.py")} - BELOW - {DRIVER}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (`from a import b` counts a.b if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if f"{node.module}.{a.name}" in MODULES}
    return found


def _layer_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "mdm" or len(parts) < 2:
        return None
    if parts[1] == "cli" or parts[-1] == "cli":
        return "cli"
    return parts[1] if parts[1] in BELOW | {DRIVER} else ("feature" if parts[1] in FEATURES
                                                          else None)


def _modules(folder: str) -> list[Path]:
    return sorted((PKG / folder).rglob("*.py"))


def test_store_and_fleet_import_no_feature_no_driver_and_no_cli() -> None:
    for layer in BELOW:
        for path in _modules(layer):
            for name in _imports(path):
                assert _layer_of(name) not in ("feature", DRIVER, "cli"), f"{path}: {name}"


def test_the_driver_imports_no_feature_and_no_cli() -> None:
    for path in _modules(DRIVER):
        for name in _imports(path):
            assert _layer_of(name) not in ("feature", "cli"), f"{path}: {name}"


# What reaches a device below the driver: transports (SSH to a device, a station's adb),
# the profile's shell text, and the driver's own shell-speaking implementation.
TRANSPORT_LEVEL = ("paramiko", "mdm.fleet.ssh", "mdm.fleet.station", "mdm.fleet.session",
                   "mdm.fleet.profiles", "mdm.driver.shell")


def test_features_reach_devices_only_through_the_driver() -> None:
    for feature in FEATURES - {"lab"}:  # the lab is the simulated fleet itself
        for path in _modules(feature):
            found = {n for n in _imports(path) if n.startswith(TRANSPORT_LEVEL)}
            assert not found, f"{path}: {sorted(found)}"


def test_the_architecture_check_sees_a_feature_reaching_a_transport(tmp_path: Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text("from mdm.fleet.station import StationConnector\n"
                   "def f():\n    from mdm.driver.shell import ShellDriver\n")
    found = {n for n in _imports(bad) if n.startswith(TRANSPORT_LEVEL)}
    assert found == {"mdm.fleet.station", "mdm.driver.shell"}


def test_no_feature_builds_drivers_from_transports_itself() -> None:
    # The app context hands out drivers; nothing else holds a transport-level fleet.
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        assert "ssh_fleet" not in text and ".fleet()" not in text, path


def test_no_import_circles_anywhere() -> None:
    graph = {name: {n for n in _imports(path) if n in MODULES and n not in (name, "mdm")}
             for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert circles == []


def test_every_feature_is_checked() -> None:
    assert {"groups", "lab", "keys", "runs", "devices", "enrol", "policies"} <= FEATURES


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
        if path.name not in ("cli.py", "device_cli.py", "cliopts.py", "docgen.py"):
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


# The store seam: SQL lives in mdm/store/<concern>.py, written for SQLite and PostgreSQL
# both; every other module of mdm (features, the CLI glue, the lab) calls those functions
# and runs no statement itself. Default deny: a module added anywhere outside the store is
# checked without being listed. The only exceptions are those still to move (each runs its
# own SQL today and leaves this list once it has moved).
SQL_HOME = "store"
SEAM_TO_DO: tuple[str, ...] = ()
# Outside the store only the CLI names the embedded engine: it turns a damaged-file error
# met outside the store's own calls into a clear message.
DRIVER_IMPORTS_ALLOWED = ("cli.py",)
_RUNS_SQL = {"execute", "executemany", "query", "iter_query", "scalar"}
_DB_DRIVERS = ("sqlite3", "sqlite_utils", "psycopg")


def _sql_calls(path: Path) -> list[str]:
    """Every `db.query(...)`-like call in a file (on a db, self.db, conn …), as line: text."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _RUNS_SQL:
            receiver = ast.unparse(node.func.value)
            if receiver.split(".")[-1].lstrip("_") in ("db", "conn", "connection"):
                found.append(f"{node.lineno}: {receiver}.{node.func.attr}")
    return found


def _listed(rel: str, entries: tuple[str, ...]) -> bool:
    """Whether a module (path relative to the package) is, or is inside, a listed entry."""
    return any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in entries)


def _outside_the_store(root: Path) -> list[tuple[str, Path]]:
    """Every module of the package at `root` outside its store, as (relative path, path)."""
    return [(rel, p) for p in sorted(root.rglob("*.py"))
            if not _listed(rel := p.relative_to(root).as_posix(), (SQL_HOME,))]


def _sql_offenders(root: Path, exceptions: tuple[str, ...]) -> dict[str, list[str]]:
    """Modules outside the store, and outside the exceptions, that run SQL themselves."""
    return {rel: calls for rel, path in _outside_the_store(root)
            if not _listed(rel, exceptions) and (calls := _sql_calls(path))}


def test_no_module_outside_the_store_runs_sql() -> None:
    checked = [rel for rel, _ in _outside_the_store(PKG) if not _listed(rel, SEAM_TO_DO)]
    assert len(checked) > 100 and "cli.py" in checked and "audit/service.py" in checked
    assert _sql_offenders(PKG, SEAM_TO_DO) == {}, "move these queries into mdm/store/<concern>.py"


def test_no_module_outside_the_store_talks_to_a_database_driver() -> None:
    for rel, path in _outside_the_store(PKG):
        found = {n for n in _imports(path) if n.split(".")[0] in _DB_DRIVERS}
        assert not found or rel in DRIVER_IMPORTS_ALLOWED, f"{rel}: {sorted(found)}"


def _connection_uses(path: Path) -> list[str]:
    """Every use of a database connection's own attributes (`db.conn.cursor`, …) but
    closing it, as line: text."""
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr != "close"
            and isinstance(node.value, ast.Attribute) and node.value.attr == "conn"]


def test_no_module_outside_the_store_reaches_into_the_connection() -> None:
    found = {rel: uses for rel, path in _outside_the_store(PKG)
             if not _listed(rel, SEAM_TO_DO) and (uses := _connection_uses(path))}
    assert found == {}


def test_the_seam_check_sees_sql_in_a_feature(tmp_path: Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text("def f(db, self):\n    db.query('SELECT 1')\n"
                   "    return self._db.execute('SELECT 2'), db.dialect.ieq('x')\n")
    assert _sql_calls(bad) == ["2: db.query", "3: self._db.execute"]
    bad.write_text("def f(db):\n    assert db.conn.in_transaction\n    db.conn.close()\n")
    assert _connection_uses(bad) == ["2: db.conn.in_transaction"]


def test_the_seam_check_denies_sql_in_any_new_module_by_default(tmp_path: Path) -> None:
    sql = "def f(db):\n    return db.execute('SELECT 1'), db.conn.executemany('x', [])\n"
    for rel in ("store/things.py", "rollout/service.py", "shiny/service.py", "shiny/cli.py",
                "tool.py", "lab/seed.py", "rolloutish.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(sql)
    assert sorted(_sql_offenders(tmp_path, ("rollout",))) == [
        "lab/seed.py", "rolloutish.py", "shiny/cli.py", "shiny/service.py", "tool.py"]
    assert _sql_offenders(tmp_path, ("rollout",))["tool.py"] == ["2: db.execute",
                                                                 "2: db.conn.executemany"]


def test_the_exceptions_name_real_places_that_still_run_sql() -> None:
    for entry in SEAM_TO_DO:  # one with no SQL left is removed from the list, and checked
        target = PKG / entry
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        assert files and all(f.exists() for f in files), entry
        assert any(_sql_calls(f) for f in files), f"{entry} runs no SQL: remove it from the list"
    assert all((PKG / e).exists() for e in DRIVER_IMPORTS_ALLOWED)
