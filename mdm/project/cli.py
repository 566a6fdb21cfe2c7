"""`mdm init` and `mdm config show`: one place for a project's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import JsonOpt, app_context, wants_json

app = typer.Typer(no_args_is_help=True, help="See the project's settings and where each"
                                             " comes from.")


def init(
    folder: Annotated[Path, typer.Argument(help="Where to write mdm.toml.", file_okay=False,
                                           show_default="the current folder")] = Path("."),
    enterprise_id: Annotated[str | None, typer.Option(
        "--enterprise-id", show_default="left commented out",
        help="Android Management API enterprise id (letters, digits, - and _).")] = None,
    track: Annotated[list[str] | None, typer.Option(
        "--track", show_default="none", help="CHANNEL=ID: the Google Play track id of a"
        " release channel (channel: pilot); repeat for more.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing mdm.toml.")
                     ] = False,
) -> None:
    """Write a commented mdm.toml here (or in FOLDER); refuses to overwrite without --force."""
    from mdm import config

    result = config.init(folder, enterprise_id, config.parse_track_options(track or []),
                         force)
    ui.success(f"wrote {result['file']}; see it in effect with: mdm config show")


@app.command("show")
def show(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Print every effective setting and where it came from (option, variable, file, default)."""
    from mdm import config

    c = app_context(ctx)
    result = (c.settings or config.load()).show()
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    file = result["file"] or ""
    empty = {"roles": "(the built-in table)", "policy.tracks": "(none)"}
    rows = [{"setting": key, "value": v["value"] if v["value"] not in (None, {})
             else empty.get(key, "(not set)"),
             "from": v["source"].replace(file, Path(file).name) if file else v["source"]}
            for key, v in result["settings"].items()]
    ui.table(rows, ["setting", "value", "from"],
             f"Settings (project file: {result['file'] or 'none found'})")
