"""`mdm assign | unassign | reassign | custody`: the chain of custody, top-level verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    ReasonOpt,
    app_context,
    list_format,
    wants_json,
)
from mdm.custody import bulk, service
from mdm.errors import InputError
from mdm.officers.models import describe
from mdm.timeutil import parse_instant

Serial = Annotated[str, typer.Argument(help="Device serial number or IMEI.")]
Officer = Annotated[str, typer.Argument(help="Officer id, payroll or collar number.")]
MaybeSerial = Annotated[str | None, typer.Argument(help="Device serial number or IMEI.",
                                                   show_default=False)]
MaybeOfficer = Annotated[str | None, typer.Argument(help="Officer id, payroll or collar number.",
                                                    show_default=False)]
FromOpt = Annotated[Path | None, typer.Option(
    "--from", show_default="none: one pair on the command line",
    help="A CSV file: serial_number, officer (id, payroll or collar number), optional reason;"
         " every row lands or nothing changes.")]


def _holder(h: dict[str, object] | None) -> str:
    return describe(h) if h else "nobody"


def _warn(result: dict[str, Any]) -> None:
    for warning in result.get("warnings", []):
        ui.info(f"warning: {warning}")


def _one_or_file(serial: str | None, from_: Path | None, usage: str) -> None:
    if bool(serial) == bool(from_):
        raise InputError("give a device serial, or --from FILE (not both)", f"e.g. {usage}")


def assign(ctx: typer.Context, serial: MaybeSerial = None, officer: MaybeOfficer = None,
           from_: FromOpt = None, reason: ReasonOpt = None, json: JsonOpt = False) -> None:
    """Allocate a device to an officer, or every pair in a --from CSV file (all or none)."""
    c = app_context(ctx)
    _one_or_file(serial, from_, "mdm assign R58F41ABC12 1234, or mdm assign --from pairs.csv")
    if bool(from_) == bool(officer):
        raise InputError("give the officer after the serial (not with --from)",
                         "e.g. mdm assign R58F41ABC12 1234")
    result = (bulk.assign_file(c.db(), c.operator, from_, reason) if from_ else
              service.assign(c.db(), c.operator, str(serial), str(officer), reason))
    _warn(result)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif from_:
        ui.success(f"{len(result['allocated'])} devices allocated from {result['file']}")
    else:
        ui.success(f"{result['serial']} allocated to {_holder(result['holder'])}")


def unassign(ctx: typer.Context, serial: MaybeSerial = None, from_: FromOpt = None,
             reason: ReasonOpt = None, json: JsonOpt = False) -> None:
    """Take a device (or every device in a --from CSV file) back; a reason is required."""
    c = app_context(ctx)
    _one_or_file(serial, from_, "mdm unassign R58F41ABC12 --reason 'returned'")
    result = (bulk.unassign_file(c.db(), c.operator, from_, reason) if from_ else
              service.unassign(c.db(), c.operator, str(serial), reason))
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif from_:
        ui.success(f"{len(result['returned'])} devices taken back ({result['file']})")
    else:
        ui.success(f"{result['serial']} taken back from {_holder(result['previous_holder'])}")


def reassign(ctx: typer.Context, serial: Serial, officer: Officer, reason: ReasonOpt = None,
             json: JsonOpt = False) -> None:
    """Move a device to another officer in one step (a --reason is required)."""
    c = app_context(ctx)
    result = service.reassign(c.db(), c.operator, serial, officer, reason)
    _warn(result)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['serial']}: {_holder(result['previous_holder'])} →"
                   f" {_holder(result['holder'])}")


def custody(ctx: typer.Context,
            serial: Annotated[str | None, typer.Argument(help="Device serial or IMEI.")] = None,
            at: Annotated[str | None, typer.Option(
                "--at", help="An instant: 2015-04-03T14:32 (UK local) or …Z (UTC).",
                show_default="now")] = None,
            officer: Annotated[str | None, typer.Option(
                "--officer", help="Which devices this officer held, and when.",
                show_default="none")] = None,
            fmt: ListFormatOpt = None, limit: LimitOpt = None,
            json: JsonOpt = False) -> None:
    """Answer who held a device at an instant, or which devices an officer held.

    With --officer, the list takes --format and --limit like every list (all rows by
    default: a custody history is short and is read whole).
    """
    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    if officer and not serial:
        result = service.officer_devices(c.db(), officer)
        if as_json:
            ui.emit_json(result)
            return
        ui.listing(result["custody"], ["serial", "opened_at", "open_reason", "closed_at",
                                       "close_reason"],
                   key_columns=("serial", "opened_at", "closed_at"),
                   fmt=list_format(ctx, fmt, False), limit=limit or ui.ALL,
                   total=len(result["custody"]), noun="devices",
                   title=f"Devices held by {describe(result)}")
        return
    if fmt is not None or limit is not None:
        raise InputError("--format and --limit list an officer's devices: use them with"
                         " --officer", "e.g. mdm custody --officer 1824 --format csv")
    if not serial or officer:
        raise InputError("give a device serial (with --at), or --officer alone",
                         "e.g. mdm custody R58F41ABC12 --at 2015-04-03T14:32")
    result = service.holder_at(c.db(), serial, parse_instant(at or "now"))
    if as_json:
        ui.emit_json(result)
    else:
        h = result["holder"]
        ui.record({"serial": result["serial"], "at (UTC)": result["at"],
                   "holder": _holder(h), "officer_id": h and h["officer_id"],
                   "held from": h and h["opened_at"], "held until": h and h["closed_at"]},
                  "Custody")


def mount(app: typer.Typer) -> None:
    """Add the custody verbs to the root app."""
    for fn in (assign, unassign, reassign, custody):
        app.command(fn.__name__)(fn)
