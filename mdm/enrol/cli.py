"""`mdm enrol …`: take in a supplier's delivery, then enrol each device over SSH."""

from __future__ import annotations

import typer

from mdm import ui
from mdm.cliopts import InputFile, JsonOpt, app_context, wants_json
from mdm.enrol import manifest

app = typer.Typer(no_args_is_help=True, help="Import deliveries and enrol devices.")


@app.command("import")
def import_(ctx: typer.Context, path: InputFile, json: JsonOpt = False) -> None:
    """Import a supplier's delivery manifest CSV; every device lands or nothing changes."""
    c = app_context(ctx)
    result = manifest.import_manifest(c.db(), c.operator, path)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['devices']} devices delivered (orders: "
                   f"{', '.join(result['orders']) or 'none given'})")
