"""Docs that can't drift: every command has help text and is in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

from mdm.docgen import command_paths

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_has_help_and_is_documented() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for path, cmd in command_paths():
        assert (cmd.help or "").strip(), f"mdm {' '.join(path)} has no help text"
        heading = f"## mdm {' '.join(path)}".rstrip()
        assert heading + "\n" in reference, f"{heading} missing from docs/cli.md"
        if len(path) >= 1 and not getattr(cmd, "commands", None):
            assert f"mdm {' '.join(path)}" in readme, f"mdm {' '.join(path)} not in README"
