"""`mdm lost | recovered | replace | return` and `mdm incidents …`: the helpdesk's verbs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    ForceOpt,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    OutputOpt,
    ReasonOpt,
    app_context,
    exported,
    list_format,
    row_limit,
    wants_json,
)

app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                  help="Lost, stolen and returned devices: deadlines, wipes, exports.")

Serial = Annotated[str, typer.Argument(help="Device serial number or IMEI.")]
Incident = Annotated[str, typer.Argument(help="The incident number (mdm incidents lists them).")]


def _emit(ctx: typer.Context, json: bool, result: dict[str, Any], line: str) -> None:
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(line)


def lost(ctx: typer.Context, serial: Serial,
         reported_by: Annotated[str, typer.Option(
             "--reported-by", help="The officer who reported it (id, payroll or collar).")],
         where: Annotated[str, typer.Option("--where", help="Where it went missing.")],
         is_lost: Annotated[bool, typer.Option("--lost", help="The device is lost.")] = False,
         stolen: Annotated[bool, typer.Option("--stolen", help="The device was stolen.")
                           ] = False,
         crime_ref: Annotated[str | None, typer.Option(
             "--crime-ref", help="The crime reference (stolen).", show_default="none")] = None,
         when: Annotated[str | None, typer.Option(
             "--when", help="When the loss became known: 2015-04-03T14:32 (UK local) or …Z.",
             show_default="now")] = None,
         json: JsonOpt = False) -> None:
    """Report a device lost or stolen: queue its lock (due now) and wipe, start the 72 hours."""
    from mdm.errors import InputError
    from mdm.helpdesk import service

    if is_lost == stolen:
        raise InputError("say --lost or --stolen (one of them)",
                         "e.g. mdm lost SERIAL --stolen --reported-by 1234 --where …")
    if not reported_by.strip():
        raise InputError("--reported-by is required", "the officer who reported it")
    c = app_context(ctx)
    r = service.lost(c.db(), c.operator, serial, stolen, reported_by, where, crime_ref, when)
    queued = "lock and wipe queued" if r["lock"] else "never enrolled: nothing to lock or wipe"
    _emit(ctx, json, r, f"incident {r['incident']}: {r['serial']} {r['kind']}; {queued};"
          f" data-protection deadline {r['dp_deadline']}; unsynced notebook entries:"
          f" {'unknown' if r['unsynced_entries'] is None else r['unsynced_entries']}")


def recovered(ctx: typer.Context, serial: Serial,
              note: Annotated[str, typer.Option("--note", help="Where and how it was found.")],
              json: JsonOpt = False) -> None:
    """Record a lost or stolen device found: cancel its queued commands, send it to IT."""
    from mdm.helpdesk import service

    c = app_context(ctx)
    r = service.recovered(c.db(), c.operator, serial, note)
    _emit(ctx, json, r, f"{r['serial']} recovered ({len(r['cancelled'])} command(s)"
          f" cancelled): {r['next']}")


def replace(ctx: typer.Context, serial: Serial,
            new: Annotated[str, typer.Option("--with", help="The provisioned spare's serial.")],
            reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
            json: JsonOpt = False) -> None:
    """Hand a provisioned spare to the officer who held a device, at one instant."""
    from mdm.helpdesk import service

    c = app_context(ctx)
    r = service.replace(c.db(), c.operator, serial, new, reason)
    _emit(ctx, json, r, f"{r['replacement']} now held by {(r['holder'] or {}).get('name')}"
          f" in place of {r['serial']}")


def return_(ctx: typer.Context, serial: Serial,
            reason: Annotated[str, typer.Option(
                "--reason", help="leaver, transfer, fault or end-of-life.")],
            json: JsonOpt = False) -> None:
    """Take a device back: close custody, queue its wipe, then stock, repair or retirement."""
    from mdm.helpdesk import service

    c = app_context(ctx)
    r = service.give_back(c.db(), c.operator, serial, reason)
    _emit(ctx, json, r, f"incident {r['incident']}: {r['serial']} returned ({r['reason']});"
          f" wipe queued, then {r['then']}")


COLUMNS = ["id", "serial", "kind", "state", "holder_name", "known_at", "dp_deadline",
           "hours_left", "unsynced_entries", "commands", "place", "crime_ref"]


@app.callback()
def incidents(ctx: typer.Context,
              open_only: Annotated[bool, typer.Option("--open", help="Only open incidents.")
                                   ] = False,
              fmt: ListFormatOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
              json: JsonOpt = False) -> None:
    """List incidents: deadlines (time left, overdue), commands, unsynced entries."""
    from mdm.helpdesk import report

    if ctx.invoked_subcommand:
        return
    c = app_context(ctx)
    rows = report.incidents(c.db(), open_only)
    if wants_json(ctx, json) or fmt in ("json", "jsonl"):  # exact data: commands as a list
        ui.listing(rows, COLUMNS, fmt=fmt or "json", limit=row_limit(limit, all_),
                   total=len(rows), noun="incidents")
        return
    shown = [{**r, "commands": ", ".join(f"{x['kind']} {x['state']}" for x in r["commands"]),
              "hours_left": _left(r)} for r in rows]
    ui.listing(shown, COLUMNS, key_columns=("id", "serial", "known_at", "dp_deadline"),
               fmt=list_format(ctx, fmt, False), limit=row_limit(limit, all_),
               total=len(rows), noun="incidents", title="Incidents", drop=("crime_ref",
                                                                          "place"))


def _left(row: dict[str, Any]) -> str | None:
    """Time left to the data-protection deadline; overdue ones stand out in red."""
    if row["hours_left"] is None:
        return None
    if row["overdue"]:
        return ui.Alarm(f"OVERDUE by {-row['hours_left']:g} h")
    return f"{row['hours_left']:g} h"


@app.command("approve-wipe")
def approve_wipe(ctx: typer.Context, incident: Incident, json: JsonOpt = False) -> None:
    """Approve an incident's wipe (a second operator: helpdesk or admin, not the requester)."""
    from mdm.helpdesk import service

    c = app_context(ctx)
    r = service.approve_wipe(c.db(), c.operator, incident)
    _emit(ctx, json, r, f"wipe of {r['serial']} (incident {r['incident']}) approved; it is"
          " sent when the device answers (mdm queue run)")


@app.command("export")
def export(ctx: typer.Context,
           open_only: Annotated[bool, typer.Option("--open", help="Only open incidents.")
                                ] = False,
           reason: ReasonOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """Export incidents as CSV for the data-protection officer (logged as a disclosure)."""
    from mdm.helpdesk import report

    c = app_context(ctx)
    _, count = report.export(c.db(), c.operator, open_only, reason, output, force,
                             emit=ui.write_out)
    exported(output, count)


def mount(root: typer.Typer) -> None:
    """Add the helpdesk verbs and `incidents` to the root app."""
    for fn, name in ((lost, "lost"), (recovered, "recovered"), (replace, "replace"),
                     (return_, "return")):
        root.command(name)(fn)
    root.add_typer(app, name="incidents")
