"""`mdm queue run | list | cancel | release | policy`: device actions waiting for devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    ConcurrencyOpt,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    SelectorArg,
    app_context,
    list_format,
    row_limit,
    wants_json,
)
from mdm.context import AppContext

app = typer.Typer(no_args_is_help=True,
                  help="The command queue: lock, wipe and policy pushes waiting for devices.")

COLUMNS = ["id", "serial", "kind", "state", "attempts", "created_at", "expires_at",
           "waiting_for", "last_answer"]


def _env(c: AppContext) -> Any:
    from mdm import config
    from mdm.queue.deliver import Env

    settings = c.settings or config.load()
    return Env(Path(settings.policies))


def _say(result: dict[str, Any]) -> None:
    ui.success(f"{len(result['done'])} command(s) delivered, {len(result['waiting'])} waiting"
               f" for their device, {len(result['expired'])} expired, of {result['due']} due")


@app.command("run")
def run(ctx: typer.Context,
        every: Annotated[float | None, typer.Option(
            "--every", help="Keep running: a pass every SECONDS until SIGTERM or Ctrl-C.",
            show_default="one pass")] = None,
        passes: Annotated[int | None, typer.Option(
            "--passes", min=1, help="With --every: stop after this many passes.",
            show_default="until stopped")] = None,
        concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Deliver every due command to each device that answers; the rest wait their turn."""
    from mdm.queue import run as runner

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    with ui.progress("delivering", not as_json) as bar:
        result = runner.run(c.db(), c.operator, lambda: c.drivers(concurrency), _env(c),
                            every, passes, bar, None if as_json or every is None else _say)
    if as_json:
        ui.emit_json(result)
    elif every is None:
        _say(result)
    else:
        ui.success(f"stopped after {result['passes']} pass(es)")


@app.command("list")
def list_(ctx: typer.Context,
          serial: Annotated[str | None, typer.Argument(help="Only this device's commands.",
                                                       show_default="every device")] = None,
          state: Annotated[list[str] | None, typer.Option(
              "--state", help="Only commands in this state (repeatable).",
              show_default="queued and sent, or all of one device's")] = None,
          fmt: ListFormatOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
          json: JsonOpt = False) -> None:
    """List queued commands: what each waits for, its attempts and the device's answer."""
    from mdm.queue import service

    c = app_context(ctx)
    rows = service.list_commands(c.db(), serial, state)
    ui.listing(rows, COLUMNS, key_columns=("id", "serial", "created_at", "expires_at"),
               fmt=list_format(ctx, fmt, json), limit=row_limit(limit, all_),
               total=len(rows), noun="commands", title="Command queue")


@app.command("cancel")
def cancel(ctx: typer.Context, command_id: Annotated[str, typer.Argument(
               help="The command id (or its first 8 characters).")],
           reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
           json: JsonOpt = False) -> None:
    """Cancel a queued command so that it is never sent."""
    from mdm.queue import service

    c = app_context(ctx)
    result = service.cancel(c.db(), c.operator, command_id, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['kind']} {result['id'][:8]} for {result['serial']} cancelled")


@app.command("release")
def release(ctx: typer.Context, command_id: Annotated[str, typer.Argument(
                help="The held wipe's id (or its first 8 characters).")],
            note: Annotated[str, typer.Option("--note", help="What the review found.")],
            json: JsonOpt = False) -> None:
    """Release a wipe held by the burst rule, after review (admin)."""
    from mdm.queue import service

    c = app_context(ctx)
    result = service.release(c.db(), c.operator, command_id, note)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"wipe {result['id'][:8]} for {result['serial']} released")


@app.command("policy")
def policy(ctx: typer.Context, selectors: SelectorArg = None, json: JsonOpt = False) -> None:
    """Queue a policy push for the selected devices (after the policy files changed)."""
    from mdm.queue import service

    c = app_context(ctx)
    result = service.queue_policy(c.db(), c.operator, selectors or [])
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"a policy push queued for {result['count']} device(s)")
