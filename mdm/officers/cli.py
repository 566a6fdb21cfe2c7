"""`mdm officers …`: the roster, for rollout managers and the helpdesk."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.bulk import paused_gc
from mdm.cliopts import (
    AllOpt,
    ErrorsOpt,
    ForceOpt,
    FormatOpt,
    InputFile,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    OutputOpt,
    ReasonOpt,
    app_context,
    export_format,
    exported,
    list_format,
    problems_to,
    row_limit,
    wants_json,
)
from mdm.officers import service
from mdm.officers.models import describe

app = typer.Typer(no_args_is_help=True,
                  help="Import and look up officers, PCSOs, Specials and staff.")


Filter = Annotated[str | None, typer.Option(help="Only officers with this value (any case).",
                                            show_default="any")]


@app.command("import")
def import_(ctx: typer.Context, path: InputFile, errors: ErrorsOpt = None,
            json: JsonOpt = False) -> None:
    """Import or re-import an HR roster CSV; every row lands or nothing changes."""
    c = app_context(ctx)
    with problems_to(errors, path), ui.progress(f"importing {path.name}") as bar:
        result = service.import_roster(c.db(), c.operator, path, bar)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    if result.get("already_imported"):
        ui.success(result["already_imported"]["message"])
        return
    ui.success(f"{result['rows']} rows: {result['inserted']} new, {result['updated']} updated,"
               f" {result['unchanged']} unchanged; {result['not_in_file']} in the inventory"
               " but not in this file")
    for h in result["leavers_holding_devices"]:
        ui.info(f"leaver {describe(h)} still holds device {h['serial']}: take it back"
                f" (mdm unassign {h['serial']} --reason 'returned: leaver')")


@app.command("list")
def list_(ctx: typer.Context,
          name: Annotated[str | None, typer.Option(
              "--name", show_default="everyone",
              help="Search: a surname or its start, 'forename surname', or a collar number.")
          ] = None,
          area: Filter = None, station: Filter = None,
          worker_type: Annotated[str | None, typer.Option(
              show_default="all", help="OFFICER, PCSO, SPECIAL or STAFF (any case).")] = None,
          rank: Annotated[str | None, typer.Option(
              show_default="all", help="A rank, e.g. sergeant, PC, 'chief inspector'.")] = None,
          status: Annotated[str | None, typer.Option(
              show_default="all", help="ACTIVE, ABSENT or LEAVER (any case).")] = None,
          team: Filter = None, fmt: ListFormatOpt = None, limit: LimitOpt = None,
          all_: AllOpt = False, json: JsonOpt = False) -> None:
    """List officers: search by name or collar, filter by area, station, type, rank, team."""
    c = app_context(ctx)
    filters = {"area": area, "station": station, "worker_type": worker_type, "rank": rank,
               "status": status, "team": team, "name": name}
    fmt = ui.pick_format(list_format(ctx, fmt, json))
    rows = (service.iter_officers if fmt in ("json", "jsonl") else service.iter_listed)
    with paused_gc():  # tens of thousands of rows, no cycles among them
        ui.listing(rows(c.db(), filters), service.LIST_COLUMNS,
                   key_columns=service.KEY_COLUMNS, drop=service.DROP_FIRST,
                   fmt=fmt, limit=row_limit(limit, all_),
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
    ui.record(officer, f"Officer {describe(officer)}")
    ui.listing(custody, ["serial", "opened_at", "open_reason", "closed_at", "close_reason"],
               key_columns=("serial", "opened_at", "closed_at"), fmt="table", limit=ui.ALL,
               title="Devices held", noun="devices held", every_column="--json")


@app.command("export")
def export(ctx: typer.Context, fmt: FormatOpt = "csv", output: OutputOpt = None,
           force: ForceOpt = False, reason: ReasonOpt = None) -> None:
    """Export every officer as CSV (spreadsheet-safe) or JSON; the export is logged."""
    c = app_context(ctx)
    with ui.progress("exporting officers") as bar:
        body, count = service.export(c.db(), c.operator, export_format(fmt), reason, output,
                                     force, bar, emit=bar.write_out)
    exported(output, count)

