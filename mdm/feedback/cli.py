"""`mdm feedback …`: what officers say — severity, minutes saved, resolution."""

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

app = typer.Typer(no_args_is_help=True,
                  help="Feedback from officers: severity, minutes saved, resolution.")


@app.command("add")
def feedback_add(
        ctx: typer.Context,
        officer: Annotated[str, typer.Option("--officer", help="Who raised it (id, payroll or"
                                                               " collar number).",
                                             show_default=False)],
        severity: Annotated[str, typer.Option("--severity", help="blocker, major or minor.",
                                              show_default=False)],
        text: Annotated[str, typer.Option("--text", help="What they said.",
                                          show_default=False)],
        minutes_saved: Annotated[int | None, typer.Option(
            "--minutes-saved", help="Minutes a shift the device saves them.",
            show_default="none")] = None,
        json: JsonOpt = False) -> None:
    """Record feedback from an officer (a blocker holds the gates until resolved)."""
    from mdm.rollout import feedback

    c = app_context(ctx)
    result = feedback.add(c.db(), c.operator, officer, severity, text, minutes_saved)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"feedback {result['id']} ({result['severity']}) recorded")


@app.command("list")
def feedback_list(
        ctx: typer.Context,
        open_only: Annotated[bool, typer.Option("--open", help="Only unresolved items.")
                             ] = False,
        severity: Annotated[str | None, typer.Option(
            "--severity", help="Only this severity.", show_default="all")] = None,
        fmt: ListFormatOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
        json: JsonOpt = False) -> None:
    """List feedback, newest first."""
    from mdm.rollout import feedback

    c = app_context(ctx)
    ui.listing(feedback.iter_items(c.db(), open_only, severity), feedback.COLUMNS,
               key_columns=feedback.KEY_COLUMNS, fmt=list_format(ctx, fmt, json),
               limit=row_limit(limit, all_), noun="feedback items")


@app.command("resolve")
def feedback_resolve(
        ctx: typer.Context,
        item: Annotated[int, typer.Argument(help="The feedback item's id.",
                                            show_default=False)],
        note: Annotated[str, typer.Option("--note", help="How it was resolved.",
                                          show_default=False)],
        json: JsonOpt = False) -> None:
    """Resolve a feedback item with a note."""
    from mdm.rollout import feedback

    c = app_context(ctx)
    result = feedback.resolve(c.db(), c.operator, item, note)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"feedback {result['id']} resolved")
