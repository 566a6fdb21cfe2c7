"""Shared fixtures: every test gets its own inventory, and a way to run `mdm`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mdm import examples
from mdm.cli import app


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MDM_DB at a temp file, so no test can touch a real inventory."""
    monkeypatch.setenv("MDM_DB", str(tmp_path / "mdm.db"))
    monkeypatch.setenv("MDM_OPERATOR", "admin")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MDM_TIMEZONE", raising=False)


class Mdm:
    """Run the CLI in-process and check its exit code."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, operator: str | None = None) -> Any:
        argv = (["--operator", operator] if operator else []) + [str(a) for a in args]
        result = self.runner.invoke(app, argv)
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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
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
def inventory(mdm: Mdm, files: Callable[..., Path], roster: list[dict[str, Any]],
              delivery: list[dict[str, Any]]) -> dict[str, Any]:
    """An inventory with an admin, a 60-person roster and a 20-device delivery."""
    mdm("operators", "add", "admin")
    mdm("officers", "import", files("roster.csv", roster, examples.ROSTER_COLUMNS))
    mdm("enrol", "import", files("manifest.csv", delivery, examples.MANIFEST_COLUMNS))
    return {"roster": roster, "delivery": delivery}
