"""`mdm operators …`: register the people who use this inventory."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import JsonOpt, app_context, wants_json
from mdm.operators import service

app = typer.Typer(no_args_is_help=True, help="Register operators and their roles.")


@app.command("add")
def add(ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The operator's login name.")],
        role: Annotated[str, typer.Option(help="admin, it, rollout or helpdesk (the first"
                                               " operator is admin whatever is given).")
                        ] = "helpdesk",
        json: JsonOpt = False) -> None:
    """Register an operator with a role (admin only; the first operator becomes admin)."""
    c = app_context(ctx)
    result = service.add(c.db(create=True), c.operator, name, role)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        first = " (first operator of this inventory, so admin)" if result["first_operator"] else ""
        ui.success(f"operator {name} added as {result['role']}{first}")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOpt = False) -> None:
    """List operators and their roles."""
    c = app_context(ctx)
    ui.render(service.list_all(c.db()), wants_json(ctx, json),
              ["name", "role", "active", "created_at", "created_by"], "Operators")
