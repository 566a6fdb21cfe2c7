"""`mdm ca rollout | status | krl | station`: what devices trust of the force's user CA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.cliopts import ConcurrencyOpt, JsonOpt, SelectorArg, app_context, wants_json
from mdm.context import AppContext

# Its commands join `mdm ca` (see the end of mdm/ca/cli.py).
app = typer.Typer()


def _env(c: AppContext) -> Any:
    from mdm import config
    from mdm.queue.deliver import Env

    settings = c.settings or config.load()
    return Env(Path(settings.policies))


def _cert_drivers(c: AppContext, concurrency: int | None) -> Any:
    from mdm.driver.routes import ssh_drivers
    from mdm.stations.service import registered

    profiles = c.settings.get("profiles") if c.settings else None
    drivers = ssh_drivers(c.key, Path(profiles) if profiles else None,
                          stations=registered(c.db()), cert_only=True)
    if concurrency:
        drivers.concurrency = concurrency
    c._drivers.append(drivers)
    return drivers


@app.command("rollout")
def rollout(ctx: typer.Context, selectors: SelectorArg = None,
            check: Annotated[bool, typer.Option(
                "--check", help="Show what each device still needs; change nothing.")] = False,
            concurrency: ConcurrencyOpt = None, json: JsonOpt = False) -> None:
    """Move devices from the plain enrolment key to CA trust (queued, resumable)."""
    from mdm.ca import rollout as service

    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    with ui.progress("ca rollout", not as_json and not check) as bar:
        result = service.rollout(c.db(), c.operator, selectors or [], c.key,
                                 lambda: c.drivers(concurrency),
                                 lambda: _cert_drivers(c, concurrency), _env(c), check, bar)
    if as_json:
        ui.emit_json(result)
    elif check:
        ui.listing(result["devices"], ["serial", "install_trust", "remove_plain_key",
                                       "send_krl"], title="CA rollout (check)")
    else:
        ui.success(f"{len(result['done'])} device(s) trust the CA and no plain key")


@app.command("status")
def status(ctx: typer.Context, selectors: SelectorArg = None, json: JsonOpt = False) -> None:
    """Show per device: CA trusted, plain keys left, revocation list held against current."""
    from mdm.ca import status as service

    c = app_context(ctx)
    rows = service.status(c.db(), selectors or [])
    if wants_json(ctx, json):
        ui.emit_json(rows)
    else:
        ui.listing(rows, service.COLUMNS, title="Device trust")


@app.command("krl")
def krl(ctx: typer.Context, selectors: SelectorArg = None, json: JsonOpt = False) -> None:
    """Queue the current revocation list to each device that holds an older one."""
    from mdm.ca import rollout as service

    c = app_context(ctx)
    result = service.queue_krl(c.db(), c.operator, selectors or [])
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"revocation list v{result['krl_version']} queued for {result['count']}"
                   " device(s): mdm queue run delivers it")


@app.command("station")
def station(ctx: typer.Context,
            name: Annotated[str, typer.Argument(help="The registered station's name.")],
            json: JsonOpt = False) -> None:
    """Make a provisioning station's sshd trust the CA (it checks bench sessions' roles)."""
    from mdm.ca import install

    c = app_context(ctx)
    result = install.install_station(c.db(), c.operator, name, c.drivers())
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"station {name} trusts CA {result['ca']}")
