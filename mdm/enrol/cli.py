"""`mdm enrol …`: take in a supplier's delivery, then enrol each device over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import (
    ConcurrencyOpt,
    ErrorsOpt,
    InputFile,
    JsonOpt,
    app_context,
    problems_to,
    wants_json,
)
from mdm.enrol import manifest, service

app = typer.Typer(no_args_is_help=True, help="Import deliveries and enrol devices.")


@app.command("import")
def import_(ctx: typer.Context, path: InputFile, errors: ErrorsOpt = None,
            json: JsonOpt = False) -> None:
    """Import a supplier's delivery manifest CSV; every device lands or nothing changes."""
    c = app_context(ctx)
    with problems_to(errors, path), ui.progress(f"importing {path.name}") as bar:
        result = manifest.import_manifest(c.db(), c.operator, path, bar)
    if wants_json(ctx, json):
        ui.emit_json(result)
    elif result.get("already_imported"):
        ui.success(result["already_imported"]["message"])
    else:
        ui.success(f"{result['devices']} devices delivered (orders: "
                   f"{', '.join(result['orders']) or 'none given'})")


TofuOpt = Annotated[bool, typer.Option(
    "--trust-on-first-use", help="Pin whatever host key the device offers (at the bench);"
                                 " recorded in the audit log.")]


@app.command("device")
def device(ctx: typer.Context,
           serial: Annotated[str, typer.Argument(help="The delivered device's serial.")],
           address: Annotated[str, typer.Option(help="[user@]host[:port] of its SSH endpoint.")],
           host_key: Annotated[str | None, typer.Option(
               help="The fingerprint you checked on the device: SHA256:…",
               show_default="none: needs --trust-on-first-use")] = None,
           tofu: TofuOpt = False, json: JsonOpt = False) -> None:
    """Enrol one device: check identity against the manifest and pin its SSH host key."""
    c = app_context(ctx)
    result = service.enrol(c.db(), c.operator, [service.Request(serial, address, host_key)],
                           c.drivers, tofu=tofu)
    _render(ctx, json, result)


@app.command("devices")
def devices(ctx: typer.Context,
            from_: Annotated[Path, typer.Option(
                "--from", help="CSV: serial_number,address[,host_key]. Checked whole first:"
                               " a repeated serial, address or key, or an address another"
                               " device holds, refuses the file (exit 2).")],
            tofu: TofuOpt = False, concurrency: ConcurrencyOpt = None,
            json: JsonOpt = False) -> None:
    """Enrol many devices at once from a CSV; failures are listed and the rest go on."""
    c = app_context(ctx)
    requests = service.requests_from_file(from_)
    with ui.progress("enrolling", not wants_json(ctx, json)) as bar:
        result = service.enrol(c.db(), c.operator, requests, lambda: c.drivers(concurrency),
                               tofu=tofu, progress=bar)
    _render(ctx, json, result)


@app.command("station")
def station(ctx: typer.Context,
            name: Annotated[str, typer.Argument(help="A registered station's name.",
                                                show_default=False)],
            json: JsonOpt = False) -> None:
    """Enrol every delivered device plugged into a station; each is bound to its route."""
    from mdm.stations import service as stations

    c = app_context(ctx)
    with ui.progress("enrolling", not wants_json(ctx, json)) as bar:
        result = stations.enrol(c.db(), c.operator, name, c.drivers(), progress=bar)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    if result["done"]:
        ui.table(result["done"], ["serial", "station", "usb"], "Enrolled")
    for s in result["skipped"]:
        ui.info(f"{s['serial']}: {s['reason']}")


def _render(ctx: typer.Context, json: bool, result: dict[str, Any]) -> None:
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    if result["done"]:
        ui.table(result["done"], ["serial", "address", "host_key", "host_key_check"], "Enrolled")
    for s in result["skipped"]:
        ui.info(f"{s['serial']}: {s['reason']}")
