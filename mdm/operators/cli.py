"""`mdm operators …`: register the people who use this inventory."""

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


@app.command("remove")
def remove(ctx: typer.Context,
           name: Annotated[str, typer.Argument(help="The operator's login name.")],
           reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit"
                                                                " log).")],
           json: JsonOpt = False) -> None:
    """Remove an operator (admin only): no more commands, no more certificates (mdm login).

    Certificates already issued stay valid until they expire; revoke them with
    mdm ca revoke NAME.
    """
    c = app_context(ctx)
    result = service.remove(c.db(), c.operator, name, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.success(f"operator {name} removed")
    if result["unexpired_certificates"]:
        ui.info(f"{name} still holds unexpired certificate(s) serial"
                f" {', '.join(map(str, result['unexpired_certificates']))}: revoke them with"
                f" mdm ca revoke {name} --reason …")


@app.command("list")
def list_(ctx: typer.Context, fmt: ListFormatOpt = None, limit: LimitOpt = None,
          all_: AllOpt = False, json: JsonOpt = False) -> None:
    """List operators and their roles."""
    c = app_context(ctx)
    ui.listing(service.list_all(c.db()), ["name", "role", "active", "created_at", "created_by"],
               key_columns=("name", "role", "created_at"), fmt=list_format(ctx, fmt, json),
               limit=row_limit(limit, all_), noun="operators")
