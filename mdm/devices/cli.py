"""`mdm devices …`: find a device by anything the helpdesk is told, and see its history."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    FormatOpt,
    JsonOpt,
    OutputOpt,
    ReasonOpt,
    app_context,
    deliver,
    export_format,
    wants_json,
)
from mdm.devices import service

app = typer.Typer(no_args_is_help=True, help="Find, show and export devices.")

FIND_COLUMNS = ["serial", "imei1", "model", "status", "holder", "matched_on"]


@app.command("find")
def find(ctx: typer.Context,
         query: Annotated[str, typer.Argument(help="Serial, IMEI, officer id, payroll,"
                                                   " collar number or surname.")],
         json: JsonOpt = False) -> None:
    """Find devices by serial, IMEI, officer id, collar number or surname."""
    c = app_context(ctx)
    rows = service.find(c.db(), query)
    if wants_json(ctx, json):
        ui.emit_json(rows)
        return
    for r in rows:
        h = r["holder"]
        r["holder"] = f"{h['name']} ({h['collar_number'] or h['officer_id']})" if h else ""
    ui.table(rows, FIND_COLUMNS, f"Devices matching {query!r}")


@app.command("show")
def show(ctx: typer.Context,
         serial: Annotated[str, typer.Argument(help="Serial number or IMEI.")],
         json: JsonOpt = False) -> None:
    """Show a device, who holds it now and its whole custody history."""
    c = app_context(ctx)
    device = service.show(c.db(), serial)
    if wants_json(ctx, json):
        ui.emit_json(device)
        return
    custody = device.pop("custody")
    ui.record(device, f"Device {device['serial']}")
    ui.table(custody, ["officer_id", "collar_number", "name", "opened_at", "opened_by",
                       "open_reason", "closed_at", "closed_by", "close_reason"],
             "Chain of custody")


@app.command("export")
def export(ctx: typer.Context, fmt: FormatOpt = "csv", output: OutputOpt = None,
           reason: ReasonOpt = None) -> None:
    """Export every device and its holder as CSV (spreadsheet-safe) or JSON; logged."""
    c = app_context(ctx)
    body, count = service.export(c.db(), c.operator, export_format(fmt), reason)
    deliver(body, output, count)
