"""`mdm training …`: training before handover — records, imports and a plan of sessions."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    ErrorsOpt,
    InputFile,
    JsonOpt,
    app_context,
    problems_to,
    wants_json,
)
from mdm.rollout.cli import PlanOpt, plan_path

app = typer.Typer(no_args_is_help=True,
                  help="Training before handover: records and a plan of sessions.")
OfficerArg = Annotated[str, typer.Argument(help="Officer id, payroll or collar number.",
                                           show_default=False)]


@app.command("import")
def training_import(ctx: typer.Context, path: InputFile, errors: ErrorsOpt = None,
                    json: JsonOpt = False) -> None:
    """Import training records (officer, date[, trainer, session]); all rows or none."""
    from mdm.rollout import training

    c = app_context(ctx)
    with problems_to(errors, path):
        result = training.import_csv(c.db(), c.operator, path)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif "already_imported" in result:
        ui.info(result["already_imported"]["message"])
    else:
        ui.success(f"{result['imported']} training record(s) imported from {result['file']}")


@app.command("record")
def training_record(
        ctx: typer.Context, officer: OfficerArg,
        day: Annotated[str, typer.Option("--date", help="When they were trained (YYYY-MM-DD).",
                                         show_default=False)],
        trainer: Annotated[str | None, typer.Option(help="Who trained them.",
                                                    show_default="none")] = None,
        session: Annotated[str | None, typer.Option(help="The session's name.",
                                                    show_default="none")] = None,
        json: JsonOpt = False) -> None:
    """Record that one officer was trained."""
    from mdm.rollout import training

    c = app_context(ctx)
    result = training.record(c.db(), c.operator, officer, day, trainer, session)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['officer_id']} trained on {result['date']}")


@app.command("plan")
def training_plan(
        ctx: typer.Context,
        wave: Annotated[str, typer.Option("--wave", help="The wave to train.",
                                          show_default=False)],
        ratio: Annotated[int | None, typer.Option(
            "--ratio", help="Trainees per trainer.",
            show_default="the plan's training.ratio, 6")] = None,
        start: Annotated[str | None, typer.Option(
            "--from", help="First day to plan (YYYY-MM-DD).",
            show_default="the wave's start")] = None,
        plan: PlanOpt = None, json: JsonOpt = False) -> None:
    """Propose sessions per station inside the trainees' off-shift time; changes nothing."""
    from mdm.errors import InputError
    from mdm.rollout import plan as planfile
    from mdm.rollout import training

    c = app_context(ctx)
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        raise InputError(f"--from {start!r} is not a date", "write YYYY-MM-DD") from None
    result = training.plan_sessions(c.db(), planfile.load(plan_path(plan)), wave, ratio, first)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["sessions"], ["session", "station", "date", "start", "end", "trainees",
                                  "teams"], title=f"training sessions, ratio {result['ratio']}")
    ui.info(f"{result['scheduled']} of {result['untrained']} untrained people scheduled in"
            f" {len(result['sessions'])} session(s); {len(result['unscheduled'])} could not be"
            " fitted off-shift (--json lists them)")
