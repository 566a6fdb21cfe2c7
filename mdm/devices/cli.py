"""`mdm devices …`: find a device by anything the helpdesk is told, and see its history."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    ConcurrencyOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    OutputOpt,
    ReasonOpt,
    SelectorArg,
    app_context,
    export_format,
    exported,
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
    holder = device["holder"]
    device["holder"] = (f"{holder['name']} (collar {holder['collar_number']}, officer"
                        f" {holder['officer_id']}) since {holder['since']}" if holder else None)
    facts = device.pop("facts") or {}
    device["facts"] = (f"Android {facts['os_release']} (SDK {facts['sdk']}), patch"
                       f" {facts['security_patch']}, {facts['crypto_state']},"
                       f" {len(facts['packages'])} packages, at {facts['collected_at']}"
                       if facts else None)
    device["supplier"] = ", ".join(f"{k}={v}" for k, v in device["supplier"].items())
    ui.record(device, f"Device {device['serial']}")
    ui.table(custody, ["officer_id", "collar_number", "name", "opened_at", "opened_by",
                       "open_reason", "closed_at", "closed_by", "close_reason"],
             "Chain of custody")


@app.command("export")
def export(ctx: typer.Context, fmt: FormatOpt = "csv", output: OutputOpt = None,
           force: ForceOpt = False, reason: ReasonOpt = None) -> None:
    """Export every device and its holder as CSV (spreadsheet-safe) or JSON; logged."""
    c = app_context(ctx)
    body, count = service.export(c.db(), c.operator, export_format(fmt), reason, output,
                                 force)
    exported(body, output, count)


@app.command("refresh")
def refresh(ctx: typer.Context, selectors: SelectorArg = None,
            concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Gather facts (OS, patch, encryption, packages, DPC status) from enrolled devices."""
    from mdm.devices.refresh import refresh as run

    c = app_context(ctx)
    with ui.progress("refreshing", not wants_json(ctx, json)) as bar:
        result = run(c.db(), c.operator, selectors or [], c.fleet(concurrency), progress=bar)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{len(result['done'])} of {result['selected']} devices reached")
