"""`mdm lab …`: a fleet of real OpenSSH devices on loopback, for rehearsals and tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mdm import ui
from mdm.cliopts import ForceOpt, JsonOpt, OutputOpt, app_context, deliver, wants_json
from mdm.errors import InputError

if TYPE_CHECKING:
    from mdm.lab.lab import Lab

app = typer.Typer(no_args_is_help=True,
                  help="Run a lab of real sshd devices on 127.0.x.y (demo, tests, rehearsal).")

LabDir = Annotated[Path | None, typer.Option("--lab-dir", envvar="MDM_LAB", show_default=False,
                                             help="Lab folder (default: `lab` in mdm.toml,"
                                                  " else lab/ beside the inventory).")]


def _lab(lab_dir: Path | None) -> Lab:
    import click

    from mdm import config
    from mdm.lab.lab import Lab  # imported here to keep it out of start-up

    obj = click.get_current_context().find_root().obj
    return Lab(lab_dir or (getattr(obj, "settings", None) or config.load()).lab)


@app.command("up")
def up(ctx: typer.Context, count: Annotated[int, typer.Argument(help="How many devices.")],
       lab_dir: LabDir = None, json: JsonOpt = False) -> None:
    """Start COUNT lab devices, each its own sshd with its own host key, accepting your key."""
    from mdm.fleet.keys import key_path

    pub = Path(str(key_path(app_context(ctx).key)) + ".pub")
    if not pub.exists():
        raise InputError(f"no operator public key at {pub}", "create one with: mdm keys init")
    lab = _lab(lab_dir)
    devices = lab.up(count, pub.read_text())
    if wants_json(ctx, json):
        ui.emit_json(lab.status())
    else:
        ui.success(f"{len(devices)} lab devices up on {devices[0].host}…{devices[-1].host},"
                   f" port {devices[0].port} ({lab.root})")


@app.command("status")
def status(ctx: typer.Context, lab_dir: LabDir = None, json: JsonOpt = False) -> None:
    """List lab devices: serial, address, host-key fingerprint, running, faults."""
    ui.render(_lab(lab_dir).status(), wants_json(ctx, json),
              ["serial", "address", "fingerprint", "running", "faults"], "Lab devices")


@app.command("down")
def down(lab_dir: LabDir = None,
         keep: Annotated[bool, typer.Option(help="Keep the lab folder.")] = False) -> None:
    """Stop every lab daemon (and its sessions) by PID, and remove the lab."""
    stopped = _lab(lab_dir).down(keep=keep)
    ui.success(f"lab down ({stopped} devices stopped)")


@app.command("fault")
def fault(serial: Annotated[str, typer.Argument(help="A lab device's serial.")],
          kind: Annotated[str | None, typer.Argument(
              help="offline, slow, swapped, identity, unencrypted, pm-install-fail,"
                   " corrupt-upload, slow-answer; weak-cipher, weak-mac, weak-kex (what"
                   " sshd offers);"
                   " dpc-forged-separator, dpc-status-list, dpc-sha-list,"
                   " dpc-details-strings, binary-output, huge-facts, huge-prop,"
                   " huge-versioncode, patch-unknown (hostile output); unauthorized,"
                   " unplug-mid-push (what a station's adb sees). See docs/fleet.md.",
              show_default=False)] = None,
          clear: Annotated[bool, typer.Option("--clear", help="Switch it off (all faults"
                                                              " if no KIND).")] = False,
          delay: Annotated[float, typer.Option(help="Seconds, for slow and slow-answer.")
                           ] = 3.0,
          lab_dir: LabDir = None) -> None:
    """Switch a fault on a lab device on, or off with --clear."""
    lab = _lab(lab_dir)
    if kind is None:
        if not clear:
            raise InputError("name a fault KIND, or give --clear to clear them all")
        lab.clear_all(serial)
        ui.success(f"{serial}: every fault cleared")
        return
    lab.fault(serial, kind, clear=clear, delay=delay)
    ui.success(f"{serial}: {kind} {'cleared' if clear else 'on'}")


@app.command("notebook")
def notebook(serial: Annotated[str, typer.Argument(help="A lab device's serial.")],
             unsynced: Annotated[int, typer.Option(
                 "--unsynced", help="E-notebook entries not yet synced (the DPC reports it"
                                    " once it has applied a policy).")],
             lab_dir: LabDir = None) -> None:
    """Set how many e-notebook entries a lab device holds unsynced."""
    _lab(lab_dir).notebook(serial, unsynced)
    ui.success(f"{serial}: {unsynced} e-notebook entries not yet synced")


@app.command("commands")
def commands(serial: Annotated[str, typer.Argument(help="A lab device's serial.")],
             lab_dir: LabDir = None) -> None:
    """Print the command log a lab device's DPC keeps (JSON): each id, kind and state."""
    ui.emit_json(_lab(lab_dir).commands(serial))


@app.command("manifest")
def manifest(output: OutputOpt = None, force: ForceOpt = False, lab_dir: LabDir = None) -> None:
    """Print the supplier manifest (CSV) for the lab's devices, for `mdm enrol import`."""
    from mdm import csvio, examples

    rows = _lab(lab_dir).manifest()
    deliver(csvio.write_csv(rows, examples.MANIFEST_COLUMNS), output, len(rows), force)


@app.command("addresses")
def addresses(output: OutputOpt = None, force: ForceOpt = False, lab_dir: LabDir = None,
              host_keys: Annotated[bool, typer.Option(
                  "--host-keys", help="Add each device's host-key fingerprint, as a supplier"
                                      " or bench check would give it.")] = False) -> None:
    """Print serial_number,address[,host_key] CSV, for `mdm enrol devices --from`."""
    from mdm.enrol.service import manifest_csv

    rows = [{"serial": r["serial"], "address": r["address"],
             "fingerprint": r["fingerprint"] if host_keys else ""}
            for r in _lab(lab_dir).status()]
    deliver(manifest_csv(rows), output, len(rows), force)


station_app = typer.Typer(no_args_is_help=True,
                          help="Provisioning stations: an sshd and an adb for plugged devices.")
app.add_typer(station_app, name="station")


@station_app.command("up")
def station_up(ctx: typer.Context,
               name: Annotated[str, typer.Argument(help="The station's name.")] = "bench",
               lab_dir: LabDir = None, json: JsonOpt = False) -> None:
    """Start a station: its own sshd and host key on 127.0.250.x, and an adb for its hub."""
    from mdm.fleet.keys import key_path

    pub = Path(str(key_path(app_context(ctx).key)) + ".pub")
    if not pub.exists():
        raise InputError(f"no operator public key at {pub}", "create one with: mdm keys init")
    lab = _lab(lab_dir)
    station = lab.station_up(name, pub.read_text())
    row = next(r for r in lab.station_status() if r["name"] == station.name)
    if wants_json(ctx, json):
        ui.emit_json(row)
    else:
        ui.success(f"station {station.name} up on {station.address}, host key"
                   f" {row['fingerprint']}")


@station_app.command("status")
def station_status(ctx: typer.Context, lab_dir: LabDir = None, json: JsonOpt = False) -> None:
    """List lab stations: name, address, host-key fingerprint, running, plugged devices."""
    ui.render(_lab(lab_dir).station_status(), wants_json(ctx, json),
              ["name", "address", "fingerprint", "running", "devices"], "Lab stations")


@station_app.command("down")
def station_down(name: Annotated[str, typer.Argument(help="The station's name.")],
                 lab_dir: LabDir = None) -> None:
    """Stop a station's sshd by PID (its devices stay plugged in; `lab down` removes all)."""
    _lab(lab_dir).station_down(name)
    ui.success(f"station {name} stopped")


@app.command("plug")
def plug(serial: Annotated[str, typer.Argument(help="A lab device's serial.")],
         station: Annotated[str, typer.Option("--station", help="The lab station's name.")],
         lab_dir: LabDir = None) -> None:
    """Plug a lab device into a station's USB hub, USB debugging on (its sshd stops)."""
    _lab(lab_dir).plug(serial, station)
    ui.success(f"{serial}: plugged into station {station}")


@app.command("unplug")
def unplug(serial: Annotated[str, typer.Argument(help="A lab device's serial.")],
           lab_dir: LabDir = None) -> None:
    """Unplug a lab device from its station (it is back on the network)."""
    were = _lab(lab_dir).unplug(serial)
    ui.success(f"{serial}: unplugged from {', '.join(were) or 'no station'}")
