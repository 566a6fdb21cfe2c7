"""`mdm stations …`: provisioning stations that drive USB-attached phones with adb."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    app_context,
    list_format,
    row_limit,
    wants_json,
)
from mdm.stations import service

app = typer.Typer(no_args_is_help=True,
                  help="Provisioning stations: a bench machine that drives USB-attached phones"
                       " with adb, reached over SSH.")

NameArg = Annotated[str, typer.Argument(help="The station's name (a-z, 0-9, -).",
                                        show_default=False)]
ReasonReq = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).",
                                        show_default=False)]


@app.command("add")
def add(ctx: typer.Context, name: NameArg,
        address: Annotated[str, typer.Option(help="[user@]host[:port] of the station's sshd.",
                                             show_default=False)],
        host_key: Annotated[str | None, typer.Option(
            help="The station's host-key fingerprint you checked on it: SHA256:…",
            show_default="none: needs --trust-on-first-use")] = None,
        tofu: Annotated[bool, typer.Option(
            "--trust-on-first-use", help="Pin whatever key the station offers; recorded in"
                                         " the audit log.")] = False,
        concurrency: Annotated[int, typer.Option(
            help="Devices on this station worked on at once (USB hubs are slow).")] = 8,
        json: JsonOpt = False) -> None:
    """Register a station: its address and pinned host key (audited)."""
    c = app_context(ctx)
    result = service.add(c.db(), c.operator, name, address, host_key, tofu,
                         lambda target: c.drivers().offered_key(target), concurrency)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"station {name} added at {address}, host key"
                   f" {result['host_key_fingerprint']}")


@app.command("list")
def list_(ctx: typer.Context, fmt: ListFormatOpt = None, limit: LimitOpt = None,
          all_: AllOpt = False, json: JsonOpt = False) -> None:
    """List stations: address, host-key fingerprint, concurrency, devices routed."""
    rows = service.list_(app_context(ctx).db())
    ui.listing(rows, ["name", "address", "host_key", "concurrency", "devices"],
               key_columns=("name", "address", "host_key"), fmt=list_format(ctx, fmt, json),
               limit=row_limit(limit, all_), total=len(rows), noun="stations",
               title="Stations")


@app.command("scan")
def scan(ctx: typer.Context, name: NameArg, json: JsonOpt = False) -> None:
    """Show what is plugged into a station (adb devices -l), matched against the inventory.

    Categories: ready (delivered, ready to enrol), enrolled_here, enrolled_elsewhere,
    unknown (not in the inventory), unauthorized (the USB debugging prompt was not
    accepted), offline, two_stations (the serial is plugged into another station too).
    """
    c = app_context(ctx)
    result = service.scan(c.db(), name, c.drivers())
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["devices"], ["serial", "state", "usb", "category", "status", "route"],
             f"Station {name}")
    for serial in result["missing"]:
        ui.info(f"{serial}: routed through {name} but not plugged in")
    for other in result["stations_not_scanned"]:
        ui.info(f"station {other['station']} not scanned: {other['error']}")


@app.command("remove")
def remove(ctx: typer.Context, name: NameArg, reason: ReasonReq,
           json: JsonOpt = False) -> None:
    """Forget a station no device is routed through (audited, with the reason)."""
    c = app_context(ctx)
    result = service.remove(c.db(), c.operator, name, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"station {name} removed")


@app.command("route")
def route(ctx: typer.Context,
          serial: Annotated[str, typer.Argument(help="An enrolled device's serial.",
                                                show_default=False)],
          reason: ReasonReq,
          station: Annotated[str | None, typer.Option(
              help="Reach it through this station (adb must see it there).",
              show_default="none: give this or --direct")] = None,
          direct: Annotated[str | None, typer.Option(
              help="Reach it directly over SSH at [user@]host[:port].",
              show_default="none: give this or --station")] = None,
          host_key: Annotated[str | None, typer.Option(
              help="With --direct: the device's host-key fingerprint, SHA256:…",
              show_default="none: needs --trust-on-first-use")] = None,
          tofu: Annotated[bool, typer.Option(
              "--trust-on-first-use", help="With --direct: pin whatever key it offers"
                                           " (audited).")] = False,
          json: JsonOpt = False) -> None:
    """Move a device between a station and a direct route; it must answer there (audited)."""
    c = app_context(ctx)
    result = service.move(c.db(), c.operator, serial, reason, c.drivers(), station=station,
                          address=direct, host_key=host_key, tofu=tofu)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{serial}: route {result['from']} → {result['to']}")
