"""Shared fixtures: every test gets its own inventory, and a way to run `mdm`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click.testing
import hypothesis
import pytest
import typer.main
import typer.testing

from mdm import examples
from mdm.cli import app as mdm_app

ROOT = Path(__file__).resolve().parent.parent
# Property tests check what is computed, not how fast: on a loaded 2-core machine one
# example can take longer than hypothesis's default 200 ms deadline.
hypothesis.settings.register_profile("mdm", deadline=None)
hypothesis.settings.load_profile("mdm")
ENTERPRISE_ID = "LC04mdmtest"
PILOT_TRACK = "4697000000000000001"


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MDM_DB at a temp file, so no test can touch a real inventory.

    Each test has its own project file (MDM_CONFIG): an AMAPI enterprise id and the pilot
    channel's Play track id, which compile and push need, and the repository's policies.
    """
    monkeypatch.setenv("MDM_DB", str(tmp_path / "mdm.db"))
    monkeypatch.setenv("MDM_OPERATOR", "admin")
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("MDM_TIMEZONE", "MDM_POLICIES", "MDM_LAB", "MDM_BUILDS", "MDM_WAIT",
                 "MDM_ENTERPRISE_ID", "MDM_TRACKS"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "mdm.toml"
    project.write_text(f'policies = "{ROOT / "playbooks" / "policies"}"\n'
                       f'[policy]\nenterprise_id = "{ENTERPRISE_ID}"\n'
                       f'[policy.tracks]\npilot = "{PILOT_TRACK}"\n')
    monkeypatch.setenv("MDM_CONFIG", str(project))


_ROOT: list[click.Command] = []


class CliRunner(typer.testing.CliRunner):
    """Typer's CliRunner, but mdm's click command is made once per test process, as the
    console script makes it once per run (its root group keeps each sub-app it loads):
    Typer's own would remake the whole tree, and the sub-app run, on every call."""

    def invoke(self, app: typer.Typer, *args: Any, **kwargs: Any) -> click.testing.Result:
        if app is not mdm_app:
            return super().invoke(app, *args, **kwargs)
        if not _ROOT:
            _ROOT.append(typer.main.get_command(mdm_app))
        return click.testing.CliRunner.invoke(self, _ROOT[0], *args, **kwargs)


class Mdm:
    """Run the CLI in-process and check its exit code."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, operator: str | None = None) -> Any:
        argv = (["--operator", operator] if operator else []) + [str(a) for a in args]
        result = self.runner.invoke(mdm_app, argv)
        assert result.exit_code == code, (
            f"mdm {' '.join(argv)} exited {result.exit_code}, wanted {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\nexc: {result.exception!r}")
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int = 0, operator: str | None = None) -> Any:
        return json.loads(self(*args, "--json", code=code, operator=operator).stdout)


@pytest.fixture
def mdm() -> Mdm:
    return Mdm()


# The slowest tests and modules, run first: with two test processes (pytest-xdist), a long
# test dealt out last keeps one process busy while the other has finished. Only the order
# changes; every test still runs.
SLOWEST_TESTS = ("test_store_pg.py::test_kill_9_during_a_large_import_leaves_old_or_new",)
SLOW_MODULES = ("test_stations_lab.py", "test_ca_device_lab.py", "test_apps_lab.py",
                "test_rollout_lab.py", "test_helpdesk_lab.py", "test_push_lab.py",
                "test_hostile_devices.py", "test_enrol_lab.py", "test_ca.py",
                "test_enrol_pairing_lab.py", "test_store_pg.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Deal the slowest tests out first (stable: the rest keep their order)."""

    def rank(item: pytest.Item) -> int:
        name = item.nodeid.split("/")[-1]
        if name.split("[")[0] in SLOWEST_TESTS:
            return -1
        module = name.split("::")[0]
        if module in SLOW_MODULES:
            return SLOW_MODULES.index(module)
        return len(SLOW_MODULES) + (0 if item.get_closest_marker("lab") else 1)

    items.sort(key=rank)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test marked `backends` once on SQLite and once on PostgreSQL.

    `backends("sqlite")` on one test of such a module keeps it to SQLite (the closest
    marker wins): for a test of SQLite's own machinery.
    """
    marker = metafunc.definition.get_closest_marker("backends")
    if marker:
        metafunc.parametrize("inventory_backend", list(marker.args) or ["sqlite", "postgresql"],
                             indirect=True)


@pytest.fixture(autouse=True)
def inventory_backend(request: pytest.FixtureRequest, _isolate: None,
                      monkeypatch: pytest.MonkeyPatch) -> str:
    """Say which backend this test's inventory is on; on PostgreSQL MDM_DB is a fresh
    database of the session's cluster (dropped after the test)."""
    backend = str(getattr(request, "param", "sqlite"))
    if backend == "postgresql":
        monkeypatch.setenv("MDM_DB", str(request.getfixturevalue("pg_url")))
    return backend


@pytest.fixture
def db_path(tmp_path: Path, inventory_backend: str) -> Any:
    """This test's inventory: an SQLite file's Path, or a PostgreSQL URL (a str)."""
    import os

    if inventory_backend == "postgresql":
        return os.environ["MDM_DB"]
    return tmp_path / "mdm.db"


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., Path]:
    """Write a CSV (rows of dicts, or raw text) into tmp_path and return its path."""

    def write(name: str, rows: list[dict[str, Any]] | str | bytes,
              columns: list[str] | None = None) -> Path:
        path = tmp_path / name
        if isinstance(rows, bytes):
            path.write_bytes(rows)
        elif isinstance(rows, str):
            path.write_text(rows, encoding="utf-8", newline="")
        else:
            examples.write_csv(path, rows, columns or list(rows[0]))
        return path

    return write


@pytest.fixture
def roster() -> list[dict[str, Any]]:
    return examples.generate_roster(60, seed=7)


@pytest.fixture
def delivery() -> list[dict[str, Any]]:
    return examples.generate_manifest(20, seed=11)


@pytest.fixture
def inventory(request: pytest.FixtureRequest, mdm: Mdm, files: Callable[..., Path],
              roster: list[dict[str, Any]], delivery: list[dict[str, Any]]) -> dict[str, Any]:
    """An inventory with an admin, a 60-person roster and a 20-device delivery.

    The three commands run once per test process, backend and set of inputs (into a
    template); each test gets a copy of that template: the same rows, made the same way.
    """
    paths = [files("roster.csv", roster, examples.ROSTER_COLUMNS),
             files("manifest.csv", delivery, examples.MANIFEST_COLUMNS)]
    commands = [("operators", "add", "admin"), ("officers", "import", str(paths[0])),
                ("enrol", "import", str(paths[1]))]
    if not _from_template(request, mdm, commands, paths):
        for command in commands:
            mdm(*command)
    return {"roster": roster, "delivery": delivery}


# -- templates: an inventory some commands made, made once and copied per test ------------

_TEMPLATES: dict[tuple[str, ...], Path | str] = {}


def _template_key(db_path: Path | str, commands: list[tuple[str, ...]],
                  inputs: list[Path]) -> tuple[str, ...] | None:
    """Return what makes a template reusable: the backend, the commands, the input files'
    bytes, every MDM_* setting and the project file (None if this test's inventory is not
    blank, so the commands must run on it as it is)."""
    import hashlib
    import os

    if isinstance(db_path, Path):
        if db_path.exists() or Path(f"{db_path}-wal").exists():
            return None
        backend = "sqlite"
    else:
        with _pg_admin(db_path) as conn:
            if conn.execute("SELECT (SELECT COUNT(*) FROM audit) + (SELECT COUNT(*) FROM"
                            " operators) + (SELECT COUNT(*) FROM officers)"
                            " + (SELECT COUNT(*) FROM devices)").fetchone()[0]:
                return None
        backend = "postgresql"
    config = os.environ.get("MDM_CONFIG")
    settings = sorted(f"{k}={v}" for k, v in os.environ.items()
                      if k.startswith("MDM_") and k not in ("MDM_DB", "MDM_CONFIG"))
    # The inputs by their bytes, not their paths (each test writes its own copies).
    named = {str(p): f"<input {i}>" for i, p in enumerate(inputs)}
    digest = hashlib.sha256()
    for part in [repr([[named.get(a, a) for a in c] for c in commands]),
                 repr(settings), repr(config),
                 Path(config).read_text() if config and Path(config).exists() else "",
                 *(p.read_bytes().hex() for p in inputs)]:
        digest.update(part.encode() + b"\0")
    return (backend, digest.hexdigest())


def _pg_admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _from_template(request: pytest.FixtureRequest, mdm: Mdm,
                   commands: list[tuple[str, ...]], inputs: list[Path]) -> bool:
    """Give this test's blank inventory (MDM_DB) what `commands` make of a blank one: a
    copy of their result on a blank inventory under the same settings, made the first
    time (SQLite: the file; PostgreSQL: the database, as a FILE_COPY clone). Return False,
    having done nothing, if the inventory is not blank."""
    import os
    import shutil
    import sqlite3
    import uuid

    from mdm.store import is_url

    url = os.environ["MDM_DB"]
    db_path: Path | str = url if is_url(url) else Path(url)
    key = _template_key(db_path, commands, inputs)
    if key is None:
        return False
    if key not in _TEMPLATES:
        if isinstance(db_path, Path):
            folder = request.getfixturevalue("tmp_path_factory").mktemp("template")
            made: Path | str = folder / db_path.name
        else:
            server = request.getfixturevalue("pg_server")
            name = f"mdm_made_{uuid.uuid4().hex[:12]}"
            with _pg_admin(server) as admin:
                admin.execute(f"CREATE DATABASE {name} TEMPLATE"
                              f" {request.getfixturevalue('pg_template')}{_file_copy(admin)}")
            made = server.rsplit("/", 1)[0] + "/" + name
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MDM_DB", str(made))
            for command in commands:
                mdm(*command)
        if isinstance(made, Path):  # fold the WAL in: the file alone is the inventory
            conn = sqlite3.connect(made)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        _TEMPLATES[key] = made
    made = _TEMPLATES[key]
    if isinstance(made, Path):
        assert isinstance(db_path, Path)
        shutil.copy2(made, db_path)
        return True
    assert isinstance(db_path, str)
    server = request.getfixturevalue("pg_server")
    name = db_path.rsplit("/", 1)[1]
    with _pg_admin(server) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {made.rsplit('/', 1)[1]}"
                      f"{_file_copy(admin)}")
    return True


def _file_copy(admin: Any) -> str:
    # FILE_COPY (PostgreSQL 15+) copies the template's few files whole: half the time
    # of the default, which logs every page (the cluster's writes are not durable).
    return " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""


# -- the lab: real sshd devices on loopback, shared by the session ----------------------

class LabPool:
    """Hands each test fresh lab devices, and puts them back to factory state after."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.free = list(lab.devices())
        self.used: list[Any] = []

    def take(self, count: int) -> list[Any]:
        assert count <= len(self.free), f"the test lab has {len(self.free)} free devices"
        taken, self.free = self.free[:count], self.free[count:]
        self.used += taken
        return taken

    def release(self) -> None:
        for device in self.used:
            self.lab.reset(device.serial)
        self.free = self.used + self.free
        self.used = []

    def manifest_for(self, devices: list[Any]) -> list[dict[str, Any]]:
        wanted = {d.serial for d in devices}
        return [r for r in self.lab.manifest() if r["serial_number"] in wanted]

    def fingerprint(self, device: Any) -> str:
        from mdm.fleet.keys import fingerprint_of_line

        return fingerprint_of_line((device.path / "etc" / "host_key.pub").read_text())


@pytest.fixture(scope="session")
def operator_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mdm.fleet.keys import generate_ed25519

    path = tmp_path_factory.mktemp("operator") / "id_ed25519"
    generate_ed25519(path, comment="mdm-tests")
    return path


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory, operator_key: Path) -> Any:
    import os

    from mdm.lab.lab import SSHD, Lab, _alive, become_subreaper

    if not SSHD.exists():
        if os.environ.get("CI"):
            pytest.fail("sshd is missing in CI: scripts/setup.sh should have installed it")
        pytest.skip("OpenSSH sshd is not installed (bash scripts/setup.sh installs it)")
    become_subreaper()
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.up(32, Path(str(operator_key) + ".pub").read_text())
    yield lab
    pids = lab.pids()
    lab.down()
    assert not [p for p in pids if _alive(p)], "lab daemons outlived lab down"


@pytest.fixture
def lab(lab_session: Any, operator_key: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MDM_KEY", str(operator_key))
    monkeypatch.setenv("MDM_LAB", str(lab_session.root))
    pool = LabPool(lab_session)
    yield pool
    pool.release()


def _has_inventory(path: Path | str) -> bool:
    if isinstance(path, str):  # a PostgreSQL database, made migrated from the template
        return True
    return path.exists() and path.stat().st_size > 0


@pytest.fixture
def delivered(request: pytest.FixtureRequest, mdm: Mdm, lab: LabPool,
              files: Callable[..., Path], db_path: Path) -> Callable[[int], list[Any]]:
    """Take N lab devices and import their delivery into this test's inventory."""

    def take(count: int) -> list[Any]:
        devices = lab.take(count)
        admin = [("operators", "add", "admin")]
        if not _from_template(request, mdm, admin, []) and (
                not _has_inventory(db_path) or not mdm.json("operators", "list")):
            mdm(*admin[0])
        path = files(f"lab-manifest-{devices[0].serial}.csv", lab.manifest_for(devices),
                     examples.MANIFEST_COLUMNS)
        mdm("enrol", "import", path)
        return devices

    return take


@pytest.fixture
def enrolled(mdm: Mdm, lab: LabPool, delivered: Callable[[int], list[Any]],
             files: Callable[..., Path]) -> Callable[[int], list[Any]]:
    """Take N lab devices, deliver and enrol them with confirmed host keys."""

    def take(count: int) -> list[Any]:
        devices = delivered(count)
        rows = "serial_number,address,host_key\n" + "".join(
            f"{d.serial},{d.address},{lab.fingerprint(d)}\n" for d in devices)
        mdm("enrol", "devices", "--from", files(f"enrol-{devices[0].serial}.csv", rows))
        return devices

    return take


@pytest.fixture
def station(lab: LabPool) -> Any:
    """The lab's provisioning station `bench` (started once; tests plug devices into it)."""
    from mdm.fleet.keys import key_path

    return lab.lab.station_up("bench", Path(str(key_path(None)) + ".pub").read_text())


# -- real APKs, made once per machine by scripts/make-apks.sh ---------------------------

@pytest.fixture(scope="session")
def apks(request: pytest.FixtureRequest) -> dict[str, Path]:
    """Real signed APKs (aapt, zipalign, apksigner) and bad inputs, cached per machine
    (tests/apks.py; scripts/test.sh starts the build before the tests)."""
    from tests import apks as cache

    return cache.build(Path(request.config.cache.mkdir(cache.name())))


# --- PostgreSQL: one throw-away cluster per run (scripts/test.sh starts it and passes its
# URL in MDM_TEST_PG; a run without it, `pytest tests/x.py`, starts its own here).

@pytest.fixture(scope="session")
def pg_server() -> Any:
    """Return the URL of the test cluster's maintenance database (started if need be)."""
    import os
    import tempfile

    from tests import pgcluster

    url = os.environ.get("MDM_TEST_PG")
    if url:
        yield url
        return
    # Not under pytest's own temp folder: as root the server runs as another user, who
    # must be able to reach its folder.
    cluster = pgcluster.start(Path(tempfile.mkdtemp(prefix="mdm-pg-", dir=pgcluster.MEMORY)))
    try:
        yield cluster.url
    finally:
        pgcluster.stop(cluster.pid, cluster.folder)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    """Return the name of a database holding a blank, migrated inventory, to copy from."""
    import uuid

    import psycopg

    from mdm.store import connect

    # The "C" locale: text sorts and lower()s as SQLite's does (bytes, ASCII case).
    name = f"mdm_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C' ENCODING 'UTF8'")
    connect(pg_server.rsplit("/", 1)[0] + "/" + name).close()
    return name


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Any:
    """Return the URL of a fresh inventory database for one test (dropped after it)."""
    import uuid

    import psycopg

    name = f"mdm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}{_file_copy(admin)}")
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> str:
    """Return an inventory on each backend in turn (MDM_DB points at it): a path or a URL."""
    if request.param == "sqlite":
        return str(tmp_path / "mdm.db")
    url = str(request.getfixturevalue("pg_url"))
    monkeypatch.setenv("MDM_DB", url)
    return url
