"""`mdm devices …`: find, list, show, export, refresh and provision devices."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    ConcurrencyOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    OutputOpt,
    ReasonOpt,
    SelectorArg,
    app_context,
    export_format,
    exported,
    list_format,
    row_limit,
    wants_json,
)
from mdm.devices import service
from mdm.officers.models import describe
from mdm.policies.cli import PoliciesOpt, _folder

app = typer.Typer(no_args_is_help=True,
                  help="Find, list, show, export, refresh and provision devices.")

FIND_COLUMNS = ["serial", "imei1", "model", "status", "holder", "matched_on"]


def _person(row: dict[str, str]) -> str:
    """Name a holder as people know them: name (collar, station)."""
    return describe({"name": row["holder_name"], "collar_number": row["holder_collar"],
                     "payroll_no": row["holder_payroll"], "station": row["holder_station"]})


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
        r["holder"] = describe(h) if h else ""
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
    device["holder"] = (f"{describe(holder)}, officer {holder['officer_id']}, since"
                        f" {holder['since']}" if holder else None)
    facts = device.pop("facts") or {}
    device["facts"] = (f"Android {facts['os_release']} (SDK {facts['sdk']}), patch"
                       f" {facts['security_patch']}, {facts['crypto_state']},"
                       f" {len(facts['packages'])} packages, at {facts['collected_at']}"
                       if facts else None)
    device["supplier"] = ", ".join(f"{k}={v}" for k, v in device["supplier"].items())
    device["queue"] = "; ".join(f"{q['kind']} {q['state']} (mdm queue list {device['serial']})"
                                for q in device["queue"]) or None
    ui.record(device, f"Device {device['serial']}")
    ui.listing(custody, ["officer_id", "collar_number", "name", "opened_at", "opened_by",
                         "open_reason", "closed_at", "closed_by", "close_reason"],
               key_columns=("officer_id", "collar_number", "opened_at", "closed_at"),
               drop=("opened_by", "closed_by", "open_reason", "close_reason"), fmt="table",
               limit=ui.ALL, title="Chain of custody", noun="custody records",
               every_column="--json")


@app.command("list")
def list_(ctx: typer.Context, selectors: SelectorArg = None, limit: LimitOpt = None,
          all_: AllOpt = False, fmt: ListFormatOpt = None, json: JsonOpt = False) -> None:
    """List devices and their holders, by selector (exit 2 if a selector picks none)."""
    c = app_context(ctx)
    fmt = list_format(ctx, fmt, json)
    rows, total = service.list_devices(c.db(), selectors or [])
    if fmt not in ("json", "jsonl"):
        rows = ({**r, "holder": r["holder_name"] and _person(r)} for r in rows)
    ui.listing(rows, service.LIST_COLUMNS, key_columns=("serial",), fmt=fmt,
               limit=row_limit(limit, all_), total=total, noun="devices", title="Devices")


@app.command("export")
def export(ctx: typer.Context, selectors: SelectorArg = None, fmt: FormatOpt = "csv",
           output: OutputOpt = None, force: ForceOpt = False,
           reason: ReasonOpt = None) -> None:
    """Export the selected devices (default all) and holders as CSV or JSON; logged."""
    c = app_context(ctx)
    with ui.progress("exporting devices") as bar:
        body, count = service.export(c.db(), c.operator, export_format(fmt), reason,
                                     selectors or [], output, force, bar, emit=bar.write_out)
    exported(output, count)


@app.command("provision")
def provision(ctx: typer.Context, selectors: SelectorArg = None,
              policies: PoliciesOpt = None,
              check: Annotated[bool, typer.Option("--check", help="Say which devices would"
                                                  " move; change nothing.")] = False,
              json: JsonOpt = False) -> None:
    """Move compliant enrolled devices to provisioned; name the rest and why (exit 1)."""
    from mdm.devices.provision import provision as run

    c = app_context(ctx)
    result = run(c.db(), c.operator, _folder(policies), selectors or [], check)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif check:
        ui.success(f"{len(result['provisioned'])} device(s) would be provisioned"
                   f" ({len(result['already_provisioned'])} already are)")
    else:
        ui.success(f"{len(result['provisioned'])} device(s) provisioned"
                   f" ({len(result['already_provisioned'])} already were)")


@app.command("refresh")
def refresh(ctx: typer.Context, selectors: SelectorArg = None,
            concurrency: ConcurrencyOpt = None, policies: PoliciesOpt = None,
            json: JsonOpt = False) -> None:
    """Gather facts (OS, patch, encryption, packages, DPC status) from enrolled devices."""
    from mdm.devices.refresh import refresh as run

    c = app_context(ctx)
    with ui.progress("refreshing", not wants_json(ctx, json)) as bar:
        result = run(c.db(), c.operator, selectors or [], c.drivers(concurrency), progress=bar,
                     folder=_folder(policies))
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{len(result['done'])} of {result['selected']} devices reached")
