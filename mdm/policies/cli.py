"""`mdm policy …` and `mdm compliance …`: policy as code, pushed and proven."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    ConcurrencyOpt,
    ForceOpt,
    JsonOpt,
    OutputOpt,
    SelectorArg,
    app_context,
    deliver,
    wants_json,
)
from mdm.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Validate, inspect, compile and push policies.")
compliance_app = typer.Typer(no_args_is_help=True, help="Judge devices against their policy.")

PoliciesOpt = Annotated[Path | None, typer.Option(
    "--policies", envvar="MDM_POLICIES", show_default=False,
    help="Policy folder (default: `policies` in mdm.toml, else playbooks/policies).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="A device serial (or IMEI);"
                                               " give this or --officer.", show_default="none")]
AllOpt = Annotated[bool, typer.Option(
    "--all", help="List every device, even on a terminal (where a summary is the default).")]
ListFormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", help="List every device as tsv, csv or json (json: the whole result).",
    show_default="a summary on a terminal, else tsv")]
PlanAllOpt = Annotated[bool, typer.Option(
    "--all", help="With --check: list every device, even on a terminal.")]
PlanFormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", help="With --check: list every device as tsv, csv or json (json: the"
    " whole plan).", show_default="a summary on a terminal, else tsv")]
OfficerOpt = Annotated[str | None, typer.Option("--officer", help="Officer id, payroll or"
                                                " collar number; give this or --device.",
                                                show_default="none")]


def _folder(policies: Path | None) -> Path:
    """Return the policy folder: --policies, else MDM_POLICIES or mdm.toml's `policies`."""
    import click

    from mdm import config

    obj = click.get_current_context().find_root().obj
    settings = getattr(obj, "settings", None) or config.load()
    return policies or settings.policies


@app.command("validate")
def validate(ctx: typer.Context, policies: PoliciesOpt = None, json: JsonOpt = False) -> None:
    """Check every policy file (keys, types, ranges, conflicts, selectors); exit 2 if bad."""
    from mdm.policies import service

    c = app_context(ctx)
    result = service.validate(c.db(), _folder(policies))
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    for w in result["warnings"]:
        ui.info(f"warning: {w['where']}: {w['message']}"
                + (f" — {w['hint']}" if w["hint"] else ""))
    ui.success(f"{result['files']} layers valid ({result['subjects_checked']} kinds of"
               " officer and device checked)")


@app.command("show")
def show(ctx: typer.Context, device: DeviceOpt = None, officer: OfficerOpt = None,
         policies: PoliciesOpt = None, json: JsonOpt = False) -> None:
    """Show the effective policy for a device or officer, each setting with its layer."""
    from mdm.policies import service

    c = app_context(ctx)
    result = service.show(c.db(), _folder(policies), device, officer)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["settings"], ["setting", "value", "layer"],
             f"Effective policy for {result['for']} ({result['sha256'][:12]})")


@app.command("compile")
def compile_(ctx: typer.Context, device: DeviceOpt = None, officer: OfficerOpt = None,
             policies: PoliciesOpt = None) -> None:
    """Print the Android Management API policy JSON for a device or officer."""
    import json

    from mdm.policies import service

    c = app_context(ctx)
    compiled = service.compile_for(c.db(), _folder(policies), device, officer)
    ui.write_text(json.dumps(compiled.document, indent=2, sort_keys=True) + "\n")
    ui.info(f"sha256 of the canonical bytes: {compiled.sha256}")


@app.command("diff")
def diff(ctx: typer.Context, selectors: SelectorArg = None, policies: PoliciesOpt = None,
         device: Annotated[str | None, typer.Option(
             "--device", help="Show this device's change (serial or IMEI).",
             show_default="every selected device")] = None,
         json: JsonOpt = False) -> None:
    """Show what pushing the current policy files would change: each distinct change once."""
    from mdm.policies import render, service

    c = app_context(ctx)
    result = service.diff(c.db(), _folder(policies), selectors or [], device)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        render.changes(result)


@app.command("push")
def push(ctx: typer.Context, selectors: SelectorArg = None, policies: PoliciesOpt = None,
         check: Annotated[bool, typer.Option("--check", help="Print the plan; change"
                                                             " nothing anywhere.")] = False,
         max_fail_percent: Annotated[float | None, typer.Option(
             help="Stop starting devices once more than this % have failed (0-100).",
             show_default="no limit")] = None,
         concurrency: ConcurrencyOpt = None, every: PlanAllOpt = False,
         fmt: PlanFormatOpt = None,
         json: JsonOpt = False) -> None:
    """Push each selected device its compiled policy, proven by the sha256 it reports."""
    from mdm.policies import push as pusher
    from mdm.policies import render

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    if check:
        fmt = render.list_format(fmt)
        _plan(pusher.check(c.db(), _folder(policies), selectors or []), as_json, every, fmt)
        return
    if every or fmt:
        raise InputError("--all and --format list the plan: they go with --check")
    with ui.progress("pushing", not as_json) as bar:
        result = pusher.push(c.db(), c.operator, _folder(policies), selectors or [],
                             c.drivers(concurrency), max_fail_percent, bar)
    if as_json:
        ui.emit_json(result)
    else:
        ui.success(f"{result['changed']} device(s) changed, {len(result['unchanged'])}"
                   f" already on their policy, of {result['selected']}")


def _plan(result: dict[str, Any], as_json: bool, every: bool, fmt: str | None) -> None:
    """Print a push plan: a summary on a terminal (every device with --all), else every device."""
    from mdm.policies import render

    if as_json:
        ui.emit_json_rows(result)
    elif not render.on_terminal(fmt):
        ui.write_out(render.device_list(result["devices"], render.PLAN_COLUMNS, fmt, result))
    else:
        (render.plan_devices if every else render.plan)(result)


@app.command("history")
def history(ctx: typer.Context, serial: Annotated[str, typer.Argument(help="Device serial.")],
            json: JsonOpt = False) -> None:
    """Show a device's policy versions: sent, applied, reported, failed."""
    from mdm.policies import service

    c = app_context(ctx)
    ui.render(service.history(c.db(), serial), wants_json(ctx, json),
              ["at", "event", "sha256", "layers", "detail"], f"Policy history of {serial}")


@compliance_app.command("report")
def report(ctx: typer.Context, selectors: SelectorArg = None, policies: PoliciesOpt = None,
           every: AllOpt = False, fmt: ListFormatOpt = None, output: OutputOpt = None,
           force: ForceOpt = False, json: JsonOpt = False) -> None:
    """Judge each device from its latest facts (reads only); exit 1 if any is not compliant."""
    from mdm.policies import render
    from mdm.policies import report as reporter

    c = app_context(ctx)
    fmt = render.list_format(fmt or render.format_of(output))
    summary_only = not (every or wants_json(ctx, json)) and render.on_terminal(fmt, output)
    result = (reporter.summarise if summary_only else reporter.report)(
        c.db(), _folder(policies), selectors or [])
    if wants_json(ctx, json) and not (fmt or output):
        ui.emit_json_rows(result)
    elif not render.on_terminal(fmt, output):
        deliver(render.device_list(reporter.flat_rows(result), reporter.COLUMNS, fmt, result),
                output, result["total"], force)
    else:
        (render.compliance_devices if every else render.compliance)(result)
    if result["ready_to_provision"]:
        ui.info(f"{len(result['ready_to_provision'])} compliant enrolled device(s) ready:"
                " mdm devices provision (it or admin role)")
    reporter.require_compliant(result)
