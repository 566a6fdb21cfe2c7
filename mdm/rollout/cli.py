"""`mdm rollout …`: the plan checked, the pilot picked, waves seen and opened through gates."""

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
    ReasonOpt,
    SelectorArg,
    app_context,
    deliver,
    wants_json,
)

app = typer.Typer(no_args_is_help=True, help="The phased rollout: plan, pilot, waves, gates.")

PlanOpt = Annotated[Path | None, typer.Option(
    "--plan", envvar="MDM_PLAN", show_default=False,
    help="The rollout plan (default: rollout.yaml beside the policy folder, i.e."
         " playbooks/rollout.yaml).")]
WaveArg = Annotated[str, typer.Argument(help="A wave's name in the plan, e.g. north.",
                                        show_default=False)]


def plan_path(plan: Path | None) -> Path:
    """Return the plan file: --plan / MDM_PLAN, else rollout.yaml beside the policies."""
    import click

    from mdm import config

    obj = click.get_current_context().find_root().obj
    settings = getattr(obj, "settings", None) or config.load()
    return plan or settings.policies.parent / "rollout.yaml"


def _settings() -> Any:
    """The project settings of this run (options, MDM_* variables, mdm.toml, defaults)."""
    import click

    from mdm import config

    obj = click.get_current_context().find_root().obj
    return getattr(obj, "settings", None) or config.load()


def policies_folder() -> Path:
    """Return the policy folder from the project settings."""
    return Path(_settings().policies)


def builds_folder() -> Path:
    """Return the build store from the project settings (the apps step installs from it)."""
    return Path(_settings().builds)


@app.command("validate")
def validate(ctx: typer.Context, plan: PlanOpt = None, json: JsonOpt = False) -> None:
    """Check the plan and its cohorts against the roster; exit 2 naming every problem."""
    from mdm.rollout import service

    c = app_context(ctx)
    result = service.validate(c.db(), plan_path(plan))
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["waves"], ["name", "start", "end", "people"], title="waves")
    ui.success(f"plan {result['plan']} is valid: {result['in_waves']} people in"
               f" {len(result['waves'])} waves")
    ui.info(f"set aside: {len(result['leavers'])} leaver(s), {len(result['not_eligible'])}"
            f" not device-eligible; {result['not_pnb_required_in_waves']} in waves are not"
            " required to carry a notebook (--json lists them)")


@app.command("pilot-select")
def pilot_select(
        ctx: typer.Context,
        size: Annotated[int, typer.Option("--size", min=1, help="People in the pilot.")] = 55,
        stratify: Annotated[str, typer.Option(
            "--stratify", help="Roster columns whose mix the pilot mirrors (rank,"
            " worker_type, area, district, station, team).")] = "rank,worker_type,area",
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Seed for a reproducible pick (default: a new one, reported).",
            show_default=False)] = None,
        apply: Annotated[bool, typer.Option("--apply", help="Fill the (empty) pilot group"
                                                            " with the pick.")] = False,
        json: JsonOpt = False) -> None:
    """Propose a pilot that mirrors the force's device-eligible people; --apply records it."""
    from mdm.rollout import pilot

    c = app_context(ctx)
    result = pilot.select(c.db(), c.operator, size, stratify, seed, apply)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["mix"], ["column", "value", "force", "force_percent", "pilot",
                             "pilot_percent", "deviation_points"], title="pilot mix vs force")
    worst = result["largest_deviation"]
    ui.info(f"largest deviation: {worst['column']}={worst['value']}"
            f" {worst['deviation_points']:+g} points; seed {result['seed']}")
    if result["applied"]:
        ui.success(f"{result['size']} people added to group pilot")
    else:
        ui.info(f"{result['size']} people proposed; --apply --seed {result['seed']} records"
                " this pick")


@app.command("status")
def status(ctx: typer.Context, wave: Annotated[str | None, typer.Option(
               "--wave", help="Only this wave.", show_default="every wave")] = None,
           by: Annotated[str | None, typer.Option(
               "--by", help="Break each wave down by station, area or team.",
               show_default="none")] = None,
           fmt: Annotated[str | None, typer.Option(
               "--format", "-f", help="csv: one row per wave (and place) for the people on"
               " the ground.", show_default="a table")] = None,
           output: OutputOpt = None, force: ForceOpt = False,
           plan: PlanOpt = None, json: JsonOpt = False) -> None:
    """Show each wave's funnel (cohort → handed over), dates and gate; reads only."""
    from mdm.rollout import views

    c = app_context(ctx)
    result = views.status(c.db(), plan_path(plan), policies_folder(), wave, by)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif fmt:
        body, count = views.status_csv(result, fmt)
        deliver(body, output, count, force)
    else:
        views.render_status(result)


@app.command("report")
def report(ctx: typer.Context,
           output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to"
                                                " write.", show_default=False)],
           force: ForceOpt = False, plan: PlanOpt = None, json: JsonOpt = False) -> None:
    """Write one self-contained HTML page: funnels, burn-up charts, blockers, time saved."""
    from mdm.rollout import report as page

    c = app_context(ctx)
    result = page.write(c.db(), plan_path(plan), policies_folder(), output, force)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"report written to {result['output']}")


@app.command("advance")
def advance(ctx: typer.Context, wave: WaveArg,
            override: Annotated[bool, typer.Option(
                "--override", help="Open it although the gate does not hold (admin; needs"
                " --reason; audited).")] = False,
            reason: ReasonOpt = None, plan: PlanOpt = None,
            check: Annotated[bool, typer.Option(
                "--check", help="Say whether the wave would open (same checks, same refusal"
                " and exit code); open nothing.")] = False,
            json: JsonOpt = False) -> None:
    """Open a wave when the previous wave's gate holds; else name each unmet condition."""
    from mdm.rollout import service

    c = app_context(ctx)
    result = service.advance(c.db(), c.operator, plan_path(plan), wave, override, reason,
                             check)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        overridden = " (the gate would be overridden)" if check else " (gate overridden)"
        ui.success(f"wave {result['wave']} {'would open' if check else 'is open'}"
                   + (overridden if result["overridden"] else "")
                   + ("; nothing was changed (--check)" if check else ""))


def handover(
        ctx: typer.Context,
        serial: Annotated[str, typer.Argument(help="The device's serial (or IMEI).",
                                              show_default=False)],
        officer: Annotated[str, typer.Option("--officer", help="Who receives it (id, payroll"
                                                               " or collar number).",
                                             show_default=False)],
        json: JsonOpt = False) -> None:
    """Record that the officer received the device (allocated, provisioned, compliant, trained)."""
    from mdm.rollout import handover as service

    c = app_context(ctx)
    result = service.handover(c.db(), c.operator, policies_folder(), serial, officer)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"{result['serial']} handed over to {result['officer_id']}")


def provision(
        ctx: typer.Context, selectors: SelectorArg = None,
        wave: Annotated[str | None, typer.Option(
            "--wave", help="Every device held by this wave's people.",
            show_default="none")] = None,
        check: Annotated[bool, typer.Option("--check", help="Print each device's steps and"
                                                            " window; change nothing.")] = False,
        ignore_window: Annotated[bool, typer.Option(
            "--ignore-window", help="Work on devices whose holder is on shift or outside the"
            " wave's windows (admin or it; needs --reason; audited).")] = False,
        reason: ReasonOpt = None, plan: PlanOpt = None,
        steps: Annotated[Path | None, typer.Option(
            "--steps", help="The provisioning playbook.", show_default="provision.yaml"
            " beside the rollout plan")] = None,
        concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Run the provisioning playbook per device, in order; resumable and duty-aware."""
    from mdm.rollout import plan as planfile
    from mdm.rollout import provisioning

    c = app_context(ctx)
    path = plan_path(plan)
    result = provisioning.provision(
        c.db(), c.operator, policies_folder(), planfile.load(path),
        steps or path.parent / "provision.yaml", selectors or [], wave, check, ignore_window,
        reason, lambda: c.drivers(concurrency), builds=builds_folder())
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table([{**d, "done": " ".join(d["done"]), "to_do": " ".join(d["to_do"])}
              for d in result["devices"]],
             ["serial", "holder", "wave", "window", "done", "to_do", "result"],
             title="provisioning plan" if check else "provisioning")
    if not check:
        ui.success(f"{len(result['provisioned'])} device(s) provisioned")
