"""`mdm policy …` and `mdm compliance …`: policy as code, pushed and proven."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    export_format,
    wants_json,
)

app = typer.Typer(no_args_is_help=True, help="Validate, inspect, compile and push policies.")
compliance_app = typer.Typer(no_args_is_help=True, help="Judge devices against their policy.")

PoliciesOpt = Annotated[Path | None, typer.Option(
    "--policies", envvar="MDM_POLICIES", show_default=False,
    help="Policy folder (default: `policies` in mdm.toml, else playbooks/policies).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="A device serial (or IMEI);"
                                               " give this or --officer.", show_default="none")]
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
         json: JsonOpt = False) -> None:
    """Show, device by device, what pushing the current policy files would change."""
    from mdm.policies import service

    c = app_context(ctx)
    result = service.diff(c.db(), _folder(policies), selectors or [])
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    for device in result:
        rows = [{**ch, "serial": device["serial"]} for ch in device["changes"]]
        ui.table(rows, ["field", "from", "to"],
                 f"{device['serial']}: {str(device['from'])[:12]} → {device['to'][:12]}")
    if not result:
        ui.success("no device would change")


@app.command("push")
def push(ctx: typer.Context, selectors: SelectorArg = None, policies: PoliciesOpt = None,
         check: Annotated[bool, typer.Option("--check", help="Print the plan; change"
                                                             " nothing anywhere.")] = False,
         max_fail_percent: Annotated[float | None, typer.Option(
             help="Stop starting devices once more than this % have failed (0-100).",
             show_default="no limit")] = None,
         concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Push each selected device its compiled policy, proven by the sha256 it reports."""
    from mdm.policies import push as pusher

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    if check:
        result = pusher.check(c.db(), _folder(policies), selectors or [])
        ui.render(result if as_json else result["devices"], as_json,
                  ["serial", "holder", "from", "to", "change"],
                  f"Plan: {result['would_change']} of {result['selected']} would change")
        return
    with ui.progress("pushing", not as_json) as bar:
        result = pusher.push(c.db(), c.operator, _folder(policies), selectors or [],
                             c.drivers(concurrency), max_fail_percent, bar)
    if as_json:
        ui.emit_json(result)
    else:
        ui.success(f"{result['changed']} device(s) changed, {len(result['unchanged'])}"
                   f" already on their policy, of {result['selected']}")


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
           fmt: Annotated[str | None, typer.Option(
               "--format", "-f", help="Export as csv or json (with -o).",
               show_default="none: a table, or JSON with --json")] = None,
           output: OutputOpt = None, force: ForceOpt = False, json: JsonOpt = False) -> None:
    """Judge each device from its latest facts (reads only); exit 1 if any is not compliant."""
    from mdm.policies import report as reporter

    c = app_context(ctx)
    result = reporter.report(c.db(), _folder(policies), selectors or [])
    if fmt:
        body = reporter.to_csv(result) if export_format(fmt) == "csv" else reporter.as_json(result)
        deliver(body, output, result["total"], force)
    elif wants_json(ctx, json):
        ui.emit_json(result)
    else:
        rows = [{**r, "reasons": "; ".join(x["detail"] for x in r["reasons"]) or "ok"}
                for r in result["devices"]]
        ui.table(rows, ["serial", "status", "holder", "station", "reasons"],
                 f"Compliance: {result['compliant']} of {result['total']} compliant")
        for by in ("area", "station", "group"):
            if not result["summary"][by]:
                continue
            ui.table([{by: k, **v} for k, v in sorted(result["summary"][by].items())],
                     [by, "total", "compliant", "non_compliant"], f"By {by}")
        if result["ready_to_provision"]:
            ui.info(f"{len(result['ready_to_provision'])} compliant enrolled device(s) ready:"
                    " mdm devices provision (it or admin role)")
    reporter.require_compliant(result)
