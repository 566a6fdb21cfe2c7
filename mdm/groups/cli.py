"""`mdm groups …`: named groups of officers (the pilot group first)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import ErrorsOpt, JsonOpt, ReasonOpt, app_context, problems_to, wants_json
from mdm.groups import service

app = typer.Typer(no_args_is_help=True, help="Named groups of officers (pilot, waves).")

Name = Annotated[str, typer.Argument(help="Group name, e.g. pilot.")]
Officers = Annotated[list[str] | None, typer.Argument(
    help="Officer ids, payroll or collar numbers.", show_default=False)]


@app.command("create")
def create(ctx: typer.Context, name: Name,
           description: Annotated[str | None, typer.Option(
               help="What the group is for.", show_default="none")] = None) -> None:
    """Create an empty group."""
    c = app_context(ctx)
    service.create(c.db(), c.operator, name, description)
    ui.success(f"group {name} created")


@app.command("add")
def add(ctx: typer.Context, name: Name, officers: Officers = None,
        from_: Annotated[Path | None, typer.Option("--from", help="CSV with an officer_id"
                                                                  " column.",
                                                   show_default="none")] = None,
        errors: ErrorsOpt = None, json: JsonOpt = False) -> None:
    """Add officers to a group (all found, or nothing changes)."""
    c = app_context(ctx)
    with problems_to(errors, from_):
        result = service.add(c.db(), c.operator, name, officers or [], from_)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['added']} added to {name}"
                   f" ({result['already_members']} already members)")


@app.command("remove")
def remove(ctx: typer.Context, name: Name, officers: Officers = None,
           reason: ReasonOpt = None) -> None:
    """Remove officers from a group (a --reason is required)."""
    c = app_context(ctx)
    result = service.remove(c.db(), c.operator, name, officers or [], reason)
    ui.success(f"{result['removed']} removed from {name}")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOpt = False) -> None:
    """List groups and how many officers each has."""
    c = app_context(ctx)
    ui.render(service.list_groups(c.db()), wants_json(ctx, json),
              ["name", "members", "description", "created_at", "created_by"], "Groups")


@app.command("show")
def show(ctx: typer.Context, name: Name, json: JsonOpt = False) -> None:
    """Show a group's members and the device each holds."""
    c = app_context(ctx)
    group = service.show(c.db(), name)
    if wants_json(ctx, json):
        ui.emit_json(group)
        return
    ui.table(group["members"], ["officer_id", "collar_number", "name", "worker_type", "rank",
                                "area", "station", "device"], f"Group {name}")
