"""The root `mdm` command: global options, every feature's sub-app, one error boundary."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from mdm import ui
from mdm.apps import cli as apps_cli
from mdm.audit import cli as audit_cli
from mdm.context import AppContext, default_operator
from mdm.custody import cli as custody_cli
from mdm.devices import cli as devices_cli
from mdm.enrol import cli as enrol_cli
from mdm.errors import ExitCode, MdmError
from mdm.groups import cli as groups_cli
from mdm.keys import cli as keys_cli
from mdm.lab import cli as lab_cli
from mdm.officers import cli as officers_cli
from mdm.operators import cli as operators_cli
from mdm.policies import cli as policies_cli
from mdm.project import cli as project_cli
from mdm.stations import cli as stations_cli


def _wants_json(ctx: Any) -> bool:
    """Say whether this run asked for JSON (globally, or a command's --json)."""
    obj = ctx.obj
    return (isinstance(obj, AppContext) and obj.json) or "--json" in ctx.meta.get("mdm.args", ())


class MdmGroup(TyperGroup):
    """The one place that turns errors into messages and exit codes.

    Under `--json` an error is one JSON object on stderr (`error`, `where`, `what_to_do`,
    `exit_code`, `problems`); otherwise it is a message for a person.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["mdm.args"] = list(args)  # so a usage error can still answer in JSON
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MdmError as exc:
            ui.error(exc, as_json=_wants_json(ctx))
            if getattr(exc, "result", None) is not None and _wants_json(ctx):
                ui.emit_json(exc.result)  # type: ignore[attr-defined]
            raise typer.Exit(int(exc.code)) from None
        except click.UsageError as exc:
            if not _wants_json(ctx):
                raise  # click prints the usage and the error, exit 2
            command = " ".join(["mdm", *(exc.ctx.command_path.split()[1:] if exc.ctx else [])])
            ui.error(MdmError(exc.format_message(), f"see {command} --help", ExitCode.USAGE,
                              where="the command line"), as_json=True)
            raise typer.Exit(exc.exit_code) from None
        except sqlite3.DatabaseError as exc:  # met outside the store's own calls
            from mdm.store.failures import translate

            obj = ctx.obj
            path = obj.db_path if isinstance(obj, AppContext) else Path("the inventory")
            error = translate(exc, path, obj.wait or 30 if isinstance(obj, AppContext) else 30)
            ui.error(error or MdmError(f"inventory error: {exc}",
                                       "run `mdm audit verify`; if it fails, restore the"
                                       " inventory from a backup", ExitCode.PARTIAL),
                     as_json=_wants_json(ctx))
            raise typer.Exit(int(ExitCode.PARTIAL)) from None
        except KeyboardInterrupt:
            if _wants_json(ctx):
                ui.error(MdmError("interrupted", "finished work is recorded; run the command"
                                  " again to resume", ExitCode.INTERRUPTED), as_json=True)
            else:
                ui.info("interrupted: finished work is recorded; run the command again to"
                        " resume")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    cls=MdmGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Enrol, assign and manage the force's smart devices, with an auditable inventory.",
)


def _version(value: bool) -> None:
    if value:
        from mdm import __version__

        ui.write_text(f"mdm {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db", envvar="MDM_DB", show_default=False,
                                            help="Inventory file (default: `inventory` in"
                                                 " mdm.toml, else inventory/mdm.db).")] = None,
    operator: Annotated[str | None, typer.Option("--operator", envvar="MDM_OPERATOR",
                                                 help="Who is acting (default: the OS user).",
                                                 show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout (and errors as"
                                                       " a JSON object on stderr).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no success lines or"
                                                              " progress bars; errors and"
                                                              " warnings still show.")
                     ] = False,
    key: Annotated[str | None, typer.Option("--key", envvar="MDM_KEY", show_default=False,
                                            help="The operator's SSH private key"
                                                 " (default: ~/.config/mdm/id_ed25519).")
                   ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print mdm's version and exit.")] = False,
    wait: Annotated[float | None, typer.Option(
        "--wait", envvar="MDM_WAIT", min=0, show_default="30, or wait in mdm.toml",
        help="Seconds a write waits for another operator's write.")] = None,
) -> None:
    """Enrol, assign and manage the force's smart devices, with an auditable inventory."""
    from click.core import ParameterSource

    from mdm import config

    ui.configure(quiet=quiet)
    typed = {name: value for name, value in (("inventory", db), ("operator", operator),
                                             ("key", key))
             if ctx.get_parameter_source({"inventory": "db"}.get(name, name))
             == ParameterSource.COMMANDLINE}
    # `mdm init --force` must be able to replace a broken mdm.toml, so it reads none.
    settings = None if ctx.invoked_subcommand == "init" else config.load(typed)
    obj = AppContext(db_path=settings.inventory if settings else Path(db or "inventory/mdm.db"),
                     operator=operator or default_operator(), json=json, verbose=verbose,
                     key=key, settings=settings,
                     wait=wait if wait is not None else (settings.wait if settings else None))
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
app.add_typer(stations_cli.app, name="stations")
app.add_typer(apps_cli.app, name="apps")
app.add_typer(lab_cli.app, name="lab")
app.add_typer(project_cli.app, name="config")
app.command("init")(project_cli.init)
custody_cli.mount(app)


def main() -> None:
    """Run the CLI (the console script's entry point)."""
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EDQUOT):
            _internal(exc)
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # nothing more can reach the reader
        ui.error(MdmError(f"could not write the output: {exc.strerror or exc}",
                          "check where the output goes (a full disk, a closed pipe), or"
                          " write it to a file with -o FILE", ExitCode.PARTIAL),
                 as_json="--json" in sys.argv)
        sys.exit(int(ExitCode.PARTIAL))
    except Exception as exc:  # the last line of defence: never a traceback, never locals
        _internal(exc)


def _internal(exc: Exception) -> NoReturn:
    """Report an error nobody foresaw: one line (or JSON), exit 70; -v re-raises it."""
    if "-v" in sys.argv or "--verbose" in sys.argv:
        raise exc
    try:
        ui.error(MdmError(f"internal error: {type(exc).__name__}: {exc}",
                          "run with -v for details, and report it", ExitCode.INTERNAL),
                 as_json="--json" in sys.argv)
    except Exception:  # the printer itself failed: plain words, still literal
        print("internal error: " + ui.literal(f"{type(exc).__name__}: {exc}"),
              file=sys.stderr)
    sys.exit(int(ExitCode.INTERNAL))
