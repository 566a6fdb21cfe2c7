"""`mdm audit …`: read the log, prove it unbroken, export its head."""

from __future__ import annotations

from typing import Annotated

import typer

from mdm import ui
from mdm.audit import service
from mdm.cliopts import JsonOpt, app_context, wants_json

app = typer.Typer(no_args_is_help=True, help="Read, verify and checkpoint the audit log.")


@app.command("log")
def log(ctx: typer.Context,
        subject: Annotated[str | None, typer.Option(help="e.g. a serial, device:SERIAL,"
                                                         " operator:NAME.",
                                                    show_default="every subject")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the newest N rows.",
                                                  show_default="all rows")] = None,
        json: JsonOpt = False) -> None:
    """Show the audit log, oldest first."""
    c = app_context(ctx)
    rows = service.log(c.db(), subject, limit)
    ui.render(rows, wants_json(ctx, json),
              ["seq", "at", "operator", "action", "subject", "before", "after"], "Audit log")


@app.command("verify")
def verify(ctx: typer.Context,
           checkpoint: Annotated[str | None, typer.Option(
               help="SEQ:HASH from `mdm audit checkpoint`, kept outside the inventory.",
               show_default="none: the chain alone")] = None,
           json: JsonOpt = False) -> None:
    """Prove the audit chain unbroken, or name the first broken row (exit 1)."""
    c = app_context(ctx)
    result = service.verify(c.db(), checkpoint)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        against = " and matches the checkpoint" if checkpoint else ""
        ui.success(f"audit chain verified: {result['rows']} rows, head {result['head']}{against}")


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Print the chain's head (SEQ:HASH) to record outside the inventory."""
    c = app_context(ctx)
    result = service.checkpoint(c.db())
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.write_text(result["checkpoint"] + "\n")
        ui.info("record this line somewhere the inventory's users cannot rewrite"
                " (a ticket, a signed e-mail, paper); check it later with"
                " mdm audit verify --checkpoint SEQ:HASH")
