"""`mdm assign | unassign | reassign | custody`: the chain of custody, top-level verbs."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import JsonOpt, ReasonOpt, app_context, wants_json
from mdm.custody import service
from mdm.errors import InputError
from mdm.timeutil import parse_instant

Serial = Annotated[str, typer.Argument(help="Device serial number or IMEI.")]
Officer = Annotated[str, typer.Argument(help="Officer id, payroll or collar number.")]


def _holder(h: dict[str, object] | None) -> str:
    if not h:
        return "nobody"
    collar = f" (collar {h['collar_number']})" if h.get("collar_number") else ""
    return f"{h['name']}{collar}"


def assign(ctx: typer.Context, serial: Serial, officer: Officer, reason: ReasonOpt = None,
           json: JsonOpt = False) -> None:
    """Allocate a device to an officer (neither may already be allocated)."""
    c = app_context(ctx)
    result = service.assign(c.db(), c.operator, serial, officer, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['serial']} allocated to {_holder(result['holder'])}")


def unassign(ctx: typer.Context, serial: Serial, reason: ReasonOpt = None,
             json: JsonOpt = False) -> None:
    """Take a device back from its holder (a --reason is required)."""
    c = app_context(ctx)
    result = service.unassign(c.db(), c.operator, serial, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['serial']} taken back from {_holder(result['previous_holder'])}")


def reassign(ctx: typer.Context, serial: Serial, officer: Officer, reason: ReasonOpt = None,
             json: JsonOpt = False) -> None:
    """Move a device to another officer in one step (a --reason is required)."""
    c = app_context(ctx)
    result = service.reassign(c.db(), c.operator, serial, officer, reason)
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
            json: JsonOpt = False) -> None:
    """Answer who held a device at an instant, or which devices an officer held."""
    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    if officer and not serial:
        result = service.officer_devices(c.db(), officer)
        ui.render(result if as_json else result["custody"], as_json,
                  ["serial", "opened_at", "open_reason", "closed_at", "close_reason"],
                  f"Devices held by {result['name']}")
        return
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
