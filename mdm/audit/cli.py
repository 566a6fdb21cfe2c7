"""`mdm audit …`: read the log, prove it and the rows it vouches for, export its head."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mdm import ui
from mdm.audit import service
from mdm.cliopts import JsonOpt, app_context, wants_json
from mdm.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Read, verify and checkpoint the audit log.")


@app.command("log")
def log(ctx: typer.Context,
        subject: Annotated[str | None, typer.Option(help="e.g. a serial, device:SERIAL,"
                                                         " operator:NAME.",
                                                    show_default="every subject")] = None,
        operator: Annotated[str | None, typer.Option(
            "--operator", help="Only rows by this operator.", show_default="everyone")] = None,
        action: Annotated[str | None, typer.Option(
            help="Only this action (custody.assign) or family (custody).",
            show_default="every action")] = None,
        since: Annotated[str | None, typer.Option(
            help="From this time (2015-04-03 or 2015-04-03T14:32, UK local; …Z for UTC).",
            show_default="the first row")] = None,
        until: Annotated[str | None, typer.Option(
            help="Up to this time; a date alone includes that whole day.",
            show_default="now")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the newest N rows.",
                                                  show_default="all rows")] = None,
        json: JsonOpt = False) -> None:
    """Show the audit log, oldest first."""
    c = app_context(ctx)
    rows = service.log(c.db(), subject, limit, operator, action, since, until)
    ui.render(rows, wants_json(ctx, json),
              ["seq", "at", "operator", "action", "subject", "before", "after"], "Audit log")


@app.command("verify")
def verify(ctx: typer.Context,
           checkpoint: Annotated[str | None, typer.Option(
               help="SEQ:HASH from `mdm audit checkpoint`, or a file from"
                    " `mdm audit checkpoint --sign`.",
               show_default="none: the chain alone")] = None,
           signer: Annotated[str | None, typer.Option(
               help="Who must have signed the checkpoint file: a fingerprint (SHA256:…),"
                    " an ssh-ed25519 public key line or a .pub file.",
               show_default="any signer (printed)")] = None,
           json: JsonOpt = False) -> None:
    """Prove the audit chain, and custody, devices and operators against it (else exit 1)."""
    c = app_context(ctx)
    result = service.verify(c.db(), checkpoint, signer)
    if wants_json(ctx, json):
        ui.emit_json(result)
        return
    cp = result.get("checkpoint")
    against = ""
    if cp:
        by = f", signed by {cp['signer']}" if "signer" in cp else ""
        against = f"; matches the checkpoint at row {cp['seq']}{by}"
    ui.success(f"audit chain verified: {result['rows']} rows, head {result['head']};"
               f" {result['state_rows']} custody, device and operator rows match it{against}")


@app.command("checkpoint")
def checkpoint(ctx: typer.Context,
               sign: Annotated[Path | None, typer.Option(
                   help="Sign it with this ed25519 private key (OpenSSH format, kept off the"
                        " inventory's host; passphrase in MDM_KEY_PASSPHRASE).",
                   show_default="unsigned: SEQ:HASH")] = None,
               output: Annotated[Path | None, typer.Option(
                   "--output", "-o", help="Write the signed checkpoint to this new file.",
                   show_default="stdout")] = None,
               json: JsonOpt = False) -> None:
    """Print the chain's head (SEQ:HASH), or a signed checkpoint, to keep outside the inventory."""
    c = app_context(ctx)
    as_json = wants_json(ctx, json)
    if sign is not None:
        result = service.signed_checkpoint(c.db(), sign, os.environ.get("MDM_KEY_PASSPHRASE"))
        _deliver_signed(result, output, as_json)
        return
    if output is not None:
        raise InputError("--output needs --sign KEYFILE",
                         "an unsigned checkpoint is one line: copy it where it is kept")
    result = service.checkpoint(c.db())
    if as_json:
        ui.emit_json(result)
        return
    ui.write_text(result["checkpoint"] + "\n")
    ui.info("record this line somewhere the inventory's users cannot rewrite"
            " (a ticket, a signed e-mail, paper); check it later with"
            " mdm audit verify --checkpoint SEQ:HASH")


def _deliver_signed(result: dict[str, Any], output: Path | None, as_json: bool) -> None:
    if output is not None:
        service.write_new(output, result["text"])
    if as_json:
        ui.emit_json(result)
    elif output is None:
        ui.write_text(result["text"])
    else:
        ui.success(f"checkpoint of row {result['seq']} signed by {result['signer']}"
                   f" written to {output}; check it with"
                   f" mdm audit verify --checkpoint {output}")
