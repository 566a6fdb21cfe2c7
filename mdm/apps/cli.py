"""`mdm apps …`: register APK builds, release them channel by channel, install and roll back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import (
    AllOpt,
    ConcurrencyOpt,
    JsonOpt,
    LimitOpt,
    ListFormatOpt,
    ReasonOpt,
    SelectorArg,
    app_context,
    list_format,
    row_limit,
    wants_json,
)

app = typer.Typer(no_args_is_help=True,
                  help="App builds (APKs): register, release by channel, install, roll back.")

Package = Annotated[str, typer.Argument(help="Package name, e.g. uk.police.cumbria.enotebook.",
                                        show_default=False)]
ChannelOpt = Annotated[str, typer.Option("--channel", help="Release channel (pilot, stable,"
                                         " or any channel a policy layer names).",
                                         show_default=False)]
CheckOpt = Annotated[bool, typer.Option("--check", help="Show which devices would change;"
                                                         " change nothing anywhere.")]
MaxFailOpt = Annotated[float | None, typer.Option(
    help="Stop starting devices once more than this % have failed (0-100).",
    show_default="no limit")]


def _folders() -> tuple[Path, Path]:
    """Return the policy folder and the build store (mdm.toml, MDM_POLICIES, MDM_BUILDS)."""
    import click

    from mdm import config

    obj = click.get_current_context().find_root().obj
    settings = getattr(obj, "settings", None) or config.load()
    return settings.policies, settings.builds


@app.command("add")
def add(ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="The signed .apk file.", show_default=False)],
        notes: Annotated[str | None, typer.Option(help="What this build is (kept with it).",
                                                  show_default="none")] = None,
        new_signer: Annotated[bool, typer.Option(
            "--new-signer", help="Accept a signer other than the package's earlier builds'"
                                 " (needs --reason).")] = False,
        reason: ReasonOpt = None, json: JsonOpt = False) -> None:
    """Register an APK build: read from the file itself, stored once by sha256, read-only."""
    from mdm.apps import service

    c = app_context(ctx)
    result = service.add(c.db(), c.operator, _folders()[1], file, notes, new_signer, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    b = result["build"]
    ui.success(f"{b['package']} {b['version_code']} ({b['version_name']})"
               f" {'registered' if result['added'] else 'is already registered'}:"
               f" sha256 {b['sha256'][:16]}…, signer {b['signer'][:16]}…")


@app.command("list")
def list_(ctx: typer.Context, fmt: ListFormatOpt = None, limit: LimitOpt = None,
          all_: AllOpt = False, json: JsonOpt = False) -> None:
    """List every registered build, its signer and the channels it is released to."""
    from mdm.apps import service

    c = app_context(ctx)
    ui.listing(service.iter_builds(c.db()), service.LIST_COLUMNS,
               key_columns=("package", "version_code", "added_at"),
               fmt=list_format(ctx, fmt, json), limit=row_limit(limit, all_), noun="builds",
               drop=("sha256", "signer", "added_by", "min_sdk", "size"))


@app.command("show")
def show(ctx: typer.Context, package: Package, json: JsonOpt = False) -> None:
    """Show a package's builds, and which build each channel runs: since when, by whom."""
    from mdm.apps import service

    c = app_context(ctx)
    result = service.show(c.db(), package)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["builds"], ["version_code", "version_name", "channels", "signer",
                                "sha256", "added_at", "added_by", "notes"],
             f"Builds of {package}")
    ui.table(result["history"], ["released_at", "channel", "version_code", "released_by",
                                 "rollback", "reason"], "Releases (the last of each channel"
                                                        " is in force)")


@app.command("release")
def release(ctx: typer.Context, package: Package,
            version_code: Annotated[int, typer.Argument(help="The build's versionCode.",
                                                        show_default=False)],
            channel: ChannelOpt, check: CheckOpt = False, reason: ReasonOpt = None,
            json: JsonOpt = False) -> None:
    """Release a build to a channel (the previous release is kept as history)."""
    from mdm.apps import service

    c = app_context(ctx)
    result = service.release(c.db(), c.operator, _folders()[0], package, version_code,
                             channel, check, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif check:
        ui.table(result["devices"], ["serial", "channel", "from", "to"],
                 f"{result['would_change']} device(s) would change")
    else:
        ui.success(f"{channel} now runs {package} {version_code}" if result["released"]
                   else result["message"])
        ui.info(f"{result['would_change']} device(s) to update: mdm apps push; the compiled"
                " policy's minimum version follows it: mdm policy push")


@app.command("push")
def push(ctx: typer.Context, selectors: SelectorArg = None, check: CheckOpt = False,
         max_fail_percent: MaxFailOpt = None, concurrency: ConcurrencyOpt = None,
         json: JsonOpt = False) -> None:
    """Install on each selected device the builds its channel releases, proven by the device."""
    from mdm.apps import push as pusher

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    policies, builds = _folders()
    if check:
        result = pusher.check(c.db(), policies, selectors or [])
        if as_json:
            ui.emit_json_rows(result)
        else:
            ui.table([r for r in result["devices"] if r["change"]],
                     ["serial", "channel", "package", "from", "to"],
                     f"{result['would_change']} of {result['selected']} device(s) would change")
        return
    with ui.progress("installing", not as_json) as bar:
        result = pusher.push(c.db(), c.operator, policies, builds, selectors or [],
                             c.drivers(concurrency), max_fail_percent, bar)
    if as_json:
        ui.emit_json(result)
    else:
        ui.success(f"{result['changed']} device(s) changed, {len(result['unchanged'])}"
                   f" already on their builds, of {result['selected']}")


@app.command("rollback")
def rollback(ctx: typer.Context, package: Package, channel: ChannelOpt,
             reason: ReasonOpt = None, max_fail_percent: MaxFailOpt = None,
             concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Release the channel's previous build again and install it (downgrading) on its devices."""
    from mdm.apps import push as pusher

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    policies, builds = _folders()
    with ui.progress("rolling back", not as_json) as bar:
        result = pusher.rollback(c.db(), c.operator, policies, builds, package, channel,
                                 reason, c.drivers(concurrency), max_fail_percent, bar)
    if as_json:
        ui.emit_json(result)
    else:
        ui.success(f"{channel} rolled back from {result['from']} to {result['to']}:"
                   f" {result['changed']} device(s) rolled back,"
                   f" {len(result['unchanged'])} already on it")


@app.command("status")
def status(ctx: typer.Context, package: Annotated[str | None, typer.Argument(
               help="Only this package.", show_default="every released package")] = None,
           by: Annotated[str | None, typer.Option(
               "--by", help="Count per station, area or channel.",
               show_default="per package")] = None,
           json: JsonOpt = False) -> None:
    """Count devices per version of each package, against what their channel releases."""
    from mdm.apps import service

    c = app_context(ctx)
    result = service.status(c.db(), _folders()[0], package, by)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.table(result["rows"], ([by] if by and by != "channel" else []) + [
                 "package", "channel", "released",
                                                     "installed", "on_release", "devices"],
             f"{result['on_release']} of {result['total']} device(s) on their release")
