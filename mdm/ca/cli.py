"""`mdm ca …` and `mdm login`: the force's SSH user CA, and an operator's shift certificate."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
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
from mdm.context import AppContext

app = typer.Typer(no_args_is_help=True,
                  help="The force's SSH user CA: create it, show it, revoke certificates;"
                       " devices' trust of it: rollout, status, KRL.")

CaDirOpt = Annotated[Path | None, typer.Option(
    "--ca-dir", show_default="ca.dir in mdm.toml, MDM_CA_DIR, else ~/.config/mdm/ca",
    help="The folder of the CA key (kept outside the project and the inventory).")]


def _folder(c: AppContext, option: Path | None) -> Path:
    if option is not None:
        return option.expanduser()
    from mdm import config

    return Path((c.settings or config.load()).get("ca.dir"))


def _passphrase(confirm: bool) -> Callable[[], str]:
    """Return how to get the CA passphrase: MDM_CA_PASSPHRASE, else a hidden prompt."""
    from mdm.ca.keys import PASSPHRASE_ENV

    def ask() -> str:
        return os.environ.get(PASSPHRASE_ENV) or str(typer.prompt(
            "CA passphrase", hide_input=True, confirmation_prompt=confirm, err=True))

    return ask


@app.command("init")
def init(ctx: typer.Context, ca_dir: CaDirOpt = None, json: JsonOpt = False) -> None:
    """Create the force's SSH user CA key (ed25519, passphrase-protected; admin only).

    The passphrase is asked for, or read from MDM_CA_PASSPHRASE (for automation).
    """
    from mdm.ca import service

    c = app_context(ctx)
    folder = _folder(c, ca_dir)
    result = service.init(c.db(), c.operator, folder, _passphrase(confirm=True))
    project = c.settings.file.parent if c.settings and c.settings.file else None
    if project and folder.resolve().is_relative_to(project.resolve()):
        ui.info(f"warning: the CA key is inside the project folder {project}: keep it out of"
                " version control and backups of the project, or move it (ca.dir)")
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"CA created: {result['fingerprint']}, key in {result['key_folder']}")
        ui.write_text(result["public_line"] + "\n")


@app.command("show")
def show(ctx: typer.Context, ca_dir: CaDirOpt = None, json: JsonOpt = False) -> None:
    """Print the CA's public line (what devices trust); --json adds where its key is kept.

    The line alone goes to stdout, so `mdm ca show > trusted_user_ca_keys` works.
    """
    from mdm.ca import service

    c = app_context(ctx)
    result = service.show(c.db(), _folder(c, ca_dir))
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    ui.write_text(result["public_line"] + "\n")
    where = ("here" if result["key_here"] else "not here") + (
        ", and in ssh-agent" if result["in_agent"] else "")
    ui.info(f"{result['fingerprint']}; key in {result['key_folder']} ({where});"
            f" revocation list version {result['krl_version']}")


@app.command("revoke")
def revoke(ctx: typer.Context,
           target: Annotated[str, typer.Argument(
               help="An operator (all their certificates) or a certificate's serial;"
                    " operator:NAME or serial:N where a name is all digits.",
               metavar="OPERATOR|SERIAL")],
           reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit"
                                                                " log).")],
           json: JsonOpt = False) -> None:
    """Revoke certificates and build a new revocation list (admin only).

    The list is delivered to devices through the command queue.
    """
    from mdm.ca import service

    c = app_context(ctx)
    result = service.revoke(c.db(), c.operator, target, reason)
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"revoked serial(s) {', '.join(map(str, result['revoked']))}; revocation"
                   f" list version {result['krl_version']}")


@app.command("certificates")
def certificates(ctx: typer.Context,
                 operator: Annotated[str | None, typer.Argument(
                     help="Only this operator's certificates.", show_default=False)] = None,
                 fmt: ListFormatOpt = None, limit: LimitOpt = None, all_: AllOpt = False,
                 json: JsonOpt = False) -> None:
    """List the certificates issued, newest first."""
    from mdm.ca import service

    c = app_context(ctx)
    ui.listing(service.certificates(c.db(), operator),
               ["serial", "operator", "principals", "valid_after", "valid_before",
                "revoked_at", "revoke_reason"], key_columns=("serial", "operator"),
               fmt=list_format(ctx, fmt, json), limit=row_limit(limit, all_),
               noun="certificates")


def login(ctx: typer.Context,
          valid_for: Annotated[str, typer.Option(
              "--valid-for", help="How long the certificate is valid: seconds, or 90m, 8h…"
                                  " (at most ca.max_validity in mdm.toml).")] = "8h",
          ca_dir: CaDirOpt = None, json: JsonOpt = False) -> None:
    """Get a certificate for your own key, signed by the force's CA, for one shift.

    It is written beside the key (`<key>-cert.pub`) and presented to devices from then on.
    The CA key is used through ssh-agent if it holds it, else read from its folder (the
    passphrase asked for, or MDM_CA_PASSPHRASE).
    """
    from mdm import config
    from mdm.ca import service
    from mdm.errors import InputError

    c = app_context(ctx)
    settings = c.settings or config.load()
    try:
        seconds = config.check_duration(valid_for)
    except ValueError as exc:
        raise InputError(f"--valid-for {valid_for!r}: {exc}", "e.g. --valid-for 8h") from None
    result = service.login(c.db(), c.operator, c.key, _folder(c, ca_dir),
                           _passphrase(confirm=False), seconds,
                           int(settings.get("ca.max_validity")))
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"certificate {result['key_id']} ({result['principals'][0]}) valid until"
                   f" {result['valid_before']}: {result['path']}")


# What devices hold of the CA (rollout, status, krl, station) is its own module.
from mdm.ca import device_cli  # noqa: E402

app.registered_commands.extend(device_cli.app.registered_commands)
