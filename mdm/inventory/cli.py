"""`mdm inventory …`: move the whole inventory between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import JsonOpt, app_context, wants_json
from mdm.inventory import service
from mdm.store import DEFAULT_WAIT

app = typer.Typer(no_args_is_help=True, help="Move the inventory between SQLite and"
                                              " PostgreSQL.")


@app.command("copy")
def copy(ctx: typer.Context,
         source: Annotated[str, typer.Argument(help="The inventory to copy: a file, or"
                                                    " postgresql://ROLE@HOST:PORT/DATABASE.")],
         target: Annotated[str, typer.Argument(help="Where to copy it: a new file, or an"
                                                    " empty PostgreSQL database.")],
         replace: Annotated[bool, typer.Option(
             "--replace", help="Replace an inventory the target already holds.")] = False,
         json: JsonOpt = False) -> None:
    """Copy a whole inventory to another backend, and prove the copy exact before saying so."""
    c = app_context(ctx)
    result = service.copy_inventory(source, target, c.operator, replace=replace,
                                    wait=DEFAULT_WAIT if c.wait is None else c.wait)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    rows = sum(t["rows"] for t in result["tables"].values())
    ui.success(f"copied {rows} rows in {len(result['tables'])} tables to {result['target']};"
               f" audit chain head {result['audit_head']} and every table's rows match")
