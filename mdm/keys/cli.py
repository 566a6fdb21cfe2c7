"""`mdm keys …`: the operator's SSH key pair, kept outside the inventory."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mdm import ui
from mdm.cliopts import JsonOpt, app_context, wants_json
from mdm.errors import InputError
from mdm.fleet import keys

app = typer.Typer(no_args_is_help=True, help="Create and show the operator's SSH key.")


@app.command("init")
def init(ctx: typer.Context,
         passphrase: Annotated[bool, typer.Option(
             "--passphrase/--no-passphrase",
             help="Protect the key with a passphrase (asked for, or MDM_KEY_PASSPHRASE);"
                  " with none, keep the key in ssh-agent or on an encrypted disk.")] = False,
         json: JsonOpt = False) -> None:
    """Create the operator's ed25519 key pair (private key mode 0600, never in the inventory)."""
    c = app_context(ctx)
    path = keys.key_path(c.key)
    if path.exists():
        raise InputError(f"{path} already exists", "keep it, or move it away first")
    secret = None
    if passphrase:
        secret = (os.environ.get("MDM_KEY_PASSPHRASE")
                  or typer.prompt("passphrase", hide_input=True, confirmation_prompt=True))
    line = keys.generate_ed25519(path, secret.encode() if secret else None,
                                 comment=f"mdm-{c.operator}")
    result = {"path": str(path), "public_key": line.strip(),
              "fingerprint": keys.fingerprint_of_line(line), "passphrase": bool(secret)}
    if wants_json(ctx, json):
        ui.emit_json(result)
    else:
        ui.success(f"key created: {path} ({result['fingerprint']})")


@app.command("show")
def show(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Show the operator's public key and its fingerprint."""
    c = app_context(ctx)
    pub = keys.key_path(c.key).with_name(keys.key_path(c.key).name + ".pub")
    if not pub.exists():
        raise InputError(f"no public key at {pub}", "create one with: mdm keys init")
    line = pub.read_text().strip()
    ui.render({"path": str(pub), "public_key": line,
               "fingerprint": keys.fingerprint_of_line(line)}, wants_json(ctx, json))
