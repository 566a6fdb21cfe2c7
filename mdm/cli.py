"""The root `mdm` command: global options, every feature's sub-app, one error boundary."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mdm import ui
from mdm.audit import cli as audit_cli
from mdm.context import AppContext, default_operator
from mdm.custody import cli as custody_cli
from mdm.devices import cli as devices_cli
from mdm.enrol import cli as enrol_cli
from mdm.errors import ExitCode, MdmError
from mdm.fleet import cli as keys_cli
from mdm.groups import cli as groups_cli
from mdm.lab import cli as lab_cli
from mdm.officers import cli as officers_cli
from mdm.operators import cli as operators_cli
from mdm.policies import cli as policies_cli


class MdmGroup(TyperGroup):
    """The one place that turns errors into messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MdmError as exc:
            ui.error(exc)
            if getattr(exc, "result", None) is not None:
                obj = ctx.obj
                if isinstance(obj, AppContext) and obj.json:
                    ui.emit_json(exc.result)  # type: ignore[attr-defined]
            raise typer.Exit(int(exc.code)) from None
        except sqlite3.OperationalError as exc:
            ui.error(MdmError(f"inventory error: {exc}",
                              "another operator may hold a long write; try again"))
            raise typer.Exit(int(ExitCode.PARTIAL)) from None
        except KeyboardInterrupt:
            ui.info("interrupted: finished work is recorded; run the command again to resume")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=MdmGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Enrol, assign and manage the force's smart devices, with an auditable inventory.",
)


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db", envvar="MDM_DB",
                                            help="Inventory file (default: inventory/mdm.db).",
                                            show_default=False)] = None,
    operator: Annotated[str | None, typer.Option("--operator", envvar="MDM_OPERATOR",
                                                 help="Who is acting (default: the OS user).",
                                                 show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more.")] = False,
    key: Annotated[str | None, typer.Option("--key", envvar="MDM_KEY", show_default=False,
                                            help="The operator's SSH private key"
                                                 " (default: ~/.config/mdm/id_ed25519).")
                   ] = None,
    wait: Annotated[float | None, typer.Option(
        "--wait", envvar="MDM_WAIT", min=0, show_default=False,
        help="Seconds a write waits for another operator's write [default: 30].")] = None,
) -> None:
    """Enrol, assign and manage the force's smart devices, with an auditable inventory."""
    from mdm.store import resolve_path

    obj = AppContext(db_path=resolve_path(str(db) if db else None),
                     operator=operator or default_operator(), json=json, verbose=verbose,
                     key=key, wait=wait)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


app.add_typer(operators_cli.app, name="operators")
app.add_typer(officers_cli.app, name="officers")
app.add_typer(enrol_cli.app, name="enrol")
app.add_typer(devices_cli.app, name="devices")
app.add_typer(groups_cli.app, name="groups")
app.add_typer(policies_cli.app, name="policy")
app.add_typer(policies_cli.compliance_app, name="compliance")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(lab_cli.app, name="lab")
custody_cli.mount(app)


def main() -> None:
    """Run the CLI (the console script's entry point)."""
    try:
        app()
    except Exception as exc:  # the last line of defence: never a traceback, never locals
        if "-v" in sys.argv or "--verbose" in sys.argv:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        sys.exit(70)
