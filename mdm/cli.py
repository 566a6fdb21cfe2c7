"""The root `mdm` command: global options, every feature's sub-app, one error boundary."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from mdm import ui
from mdm.context import AppContext, default_operator
from mdm.errors import ExitCode, MdmError

# Every command, in the order `mdm --help` lists them: name → (module, attribute), where
# the attribute is a feature's Typer app (a group of commands) or one command's function.
# A run imports only the module of the command it runs: start-up is paid on every
# helpdesk lookup, and importing and building all of them cost more than most commands'
# own work. (A group added with app.add_typer still works, but is imported every run.)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("mdm.project.cli", "init"),
    "assign": ("mdm.custody.cli", "assign"),
    "unassign": ("mdm.custody.cli", "unassign"),
    "reassign": ("mdm.custody.cli", "reassign"),
    "custody": ("mdm.custody.cli", "custody"),
    "operators": ("mdm.operators.cli", "app"),
    "officers": ("mdm.officers.cli", "app"),
    "enrol": ("mdm.enrol.cli", "app"),
    "devices": ("mdm.devices.cli", "app"),
    "groups": ("mdm.groups.cli", "app"),
    "policy": ("mdm.policies.cli", "app"),
    "compliance": ("mdm.policies.cli", "compliance_app"),
    "audit": ("mdm.audit.cli", "app"),
    "inventory": ("mdm.inventory.cli", "app"),
    "keys": ("mdm.keys.cli", "app"),
    "login": ("mdm.ca.cli", "login"),
    "ca": ("mdm.ca.cli", "app"),
    "lost": ("mdm.helpdesk.cli", "lost"),
    "recovered": ("mdm.helpdesk.cli", "recovered"),
    "replace": ("mdm.helpdesk.cli", "replace"),
    "return": ("mdm.helpdesk.cli", "return_"),
    "incidents": ("mdm.helpdesk.cli", "app"),
    "queue": ("mdm.queue.cli", "app"),
    "stations": ("mdm.stations.cli", "app"),
    "apps": ("mdm.apps.cli", "app"),
    "rollout": ("mdm.rollout.cli", "app"),
    "provision": ("mdm.rollout.cli", "provision"),
    "training": ("mdm.training.cli", "app"),
    "handover": ("mdm.rollout.cli", "handover"),
    "feedback": ("mdm.feedback.cli", "app"),
    "lab": ("mdm.lab.cli", "app"),
    "config": ("mdm.project.cli", "app"),
}


def _load(name: str) -> click.Command:
    """Import one command's module and build its click command (a group for a sub-app)."""
    import importlib

    import typer.main

    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    command: click.Command
    if isinstance(target, typer.Typer) and not target.registered_groups:
        command = _LazyGroup.of(target)
    elif isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:  # one command's function: a Typer of its own builds it
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    """A feature's group whose commands are each built (its signature read, its options
    made) when it is looked up: a run builds the one command it runs, `--help` them all."""

    names: list[str]
    pending: dict[str, Any]  # name -> Typer's CommandInfo, not yet built
    build: Callable[[Any], click.Command]

    @classmethod
    def of(cls, target: typer.Typer) -> _LazyGroup:
        """Build a feature's group (its own options and callback) without its commands."""
        import copy
        from functools import partial

        import typer.main

        shell = copy.copy(target)
        shell.info = copy.copy(target.info)
        shell.info.cls = cls
        shell.registered_commands = []
        group = typer.main.get_group(shell)
        assert isinstance(group, cls)
        group.pending = {info.name or typer.main.get_command_name(
            getattr(info.callback, "__name__", "")): info for info in target.registered_commands}
        group.names = list(group.pending)
        group.build = partial(typer.main.get_command_from_info,
                              pretty_exceptions_short=target.pretty_exceptions_short,
                              rich_markup_mode=target.rich_markup_mode)
        return group

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.names)

    def get_command(self, ctx: Any, name: str) -> click.Command | None:
        info = self.pending.pop(name, None)
        if info is not None:
            self.commands[name] = self.build(info)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.names:  # Typer suggests from the commands built
            for name in list(self.pending):
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _wants_json(ctx: Any) -> bool:
    """Say whether this run asked for JSON (globally, or a command's --json)."""
    obj = ctx.obj
    return (isinstance(obj, AppContext) and obj.json) or "--json" in ctx.meta.get("mdm.args", ())


class MdmGroup(TyperGroup):
    """The one place that turns errors into messages and exit codes.

    Under `--json` an error is one JSON object on stderr (`error`, `where`, `what_to_do`,
    `exit_code`, `problems`); otherwise it is a message for a person.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            self.commands[name] = _load(name)
        return super().get_command(ctx, name)

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
            path = Path(obj.db_path) if isinstance(obj, AppContext) else Path("the inventory")
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
    db: Annotated[str | None, typer.Option("--db", envvar="MDM_DB", show_default=False,
                                           help="Inventory file, or postgresql://ROLE@HOST"
                                                ":PORT/DATABASE (default: `inventory` in"
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
    if settings is None:
        from mdm.store import resolve_path
    obj = AppContext(db_path=settings.inventory if settings else resolve_path(db),
                     operator=operator or default_operator(), json=json, verbose=verbose,
                     key=key, settings=settings,
                     wait=wait if wait is not None else (settings.wait if settings else None))
    ctx.obj = obj
    ctx.call_on_close(obj.close)




def main() -> None:
    """Run the CLI (the console script's entry point)."""
    ui.prepare_streams()
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
