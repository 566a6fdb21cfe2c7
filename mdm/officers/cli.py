"""`mdm officers …`: the roster, for rollout managers and the helpdesk."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    FormatOpt,
    InputFile,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    OutputOpt,
    ReasonOpt,
    app_context,
    deliver,
    export_format,
    list_format,
    row_limit,
    wants_json,
)
from mdm.officers import service

app = typer.Typer(no_args_is_help=True,
                  help="Import and look up officers, PCSOs, Specials and staff.")


def _filter(help_: str) -> Any:
    """A list filter's option: matched without regard to case."""
    return typer.Option(help=help_ + " Any case.", show_default=False)


Area = Annotated[str | None, _filter("Area, e.g. SOUTH.")]
Station = Annotated[str | None, _filter("Station, e.g. Kendal.")]
WorkerType = Annotated[str | None, _filter("OFFICER, PCSO, SPECIAL or STAFF.")]
Rank = Annotated[str | None, _filter("A rank or its short form, e.g. CONSTABLE, PC, 'Chief"
                                     " Inspector', DCI.")]
Status = Annotated[str | None, _filter("ACTIVE, ABSENT or LEAVER.")]
Team = Annotated[str | None, _filter("Team, e.g. NPT.")]
Name = Annotated[str | None, _filter("A surname or its start, 'forename surname',"
                                     " 'surname, forename', or a collar or payroll number.")]


@app.command("import")
def import_(ctx: typer.Context, path: InputFile, json: JsonOpt = False) -> None:
    """Import or re-import an HR roster CSV; every row lands or nothing changes."""
    c = app_context(ctx)
    with ui.progress(f"importing {path.name}") as bar:
        result = service.import_roster(c.db(), c.operator, path, bar)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.success(f"{result['rows']} rows: {result['inserted']} new, {result['updated']} updated,"
               f" {result['unchanged']} unchanged; {result['not_in_file']} in the inventory"
               " but not in this file")
    for h in result["leavers_holding_devices"]:
        ui.info(f"leaver {h['officer_id']} still holds device {h['serial']}: take it back")


@app.command("list")
def list_(ctx: typer.Context, area: Area = None, station: Station = None,
          worker_type: WorkerType = None, rank: Rank = None, status: Status = None,
          team: Team = None, name: Name = None, fmt: ListFormatOpt = None,
          limit: LimitOpt = None, all_: AllOpt = False, json: JsonOpt = False) -> None:
    """List officers, filtered by area, station, worker type, rank, status, team or name."""
    c = app_context(ctx)
    filters = {"area": area, "station": station, "worker_type": worker_type, "rank": rank,
               "status": status, "team": team, "name": name}
    ui.listing(service.iter_officers(c.db(), filters), service.LIST_COLUMNS,
               key_columns=service.KEY_COLUMNS, drop=service.DROP_FIRST,
               fmt=list_format(ctx, fmt, json), limit=row_limit(limit, all_),
               total=lambda: service.count_officers(c.db(), filters), noun="officers")


@app.command("show")
def show(ctx: typer.Context,
         ref: Annotated[str, typer.Argument(help="Officer id, payroll or collar number.")],
         json: JsonOpt = False) -> None:
    """Show one officer, the device they hold and every device they have held."""
    c = app_context(ctx)
    officer = service.show(c.db(), ref)
    if wants_json(ctx, json):
        ui.emit_json(officer)
        return
    custody = officer.pop("custody")
    ui.record(officer, f"Officer {officer['officer_id']}")
    ui.table(custody, ["serial", "opened_at", "open_reason", "closed_at", "close_reason"],
             "Devices held")


@app.command("export")
def export(ctx: typer.Context, fmt: FormatOpt = "csv", output: OutputOpt = None,
           reason: ReasonOpt = None) -> None:
    """Export every officer as CSV (spreadsheet-safe) or JSON; the export is logged."""
    c = app_context(ctx)
    with ui.progress("exporting officers") as bar:
        body, count = service.export(c.db(), c.operator, export_format(fmt), reason, bar)
    deliver(body, output, count)

