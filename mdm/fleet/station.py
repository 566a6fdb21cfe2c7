"""Reach USB-attached devices through a provisioning station: SSH to it, then `adb`.

A station is a Linux machine with a USB hub, reached over SSH exactly as a device is
(its own pinned host key, RejectPolicy, a deadline on every step: the connection is a
`ParamikoTransport` to the station). Each device on it is a `StationTransport` that keeps
the Transport contract with `adb -s SERIAL shell …` for commands and `adb push` for files:

- one SSH connection per station carries every device's work for the whole command run
  (closed with the connector), each command its own channel; at most `concurrency`
  channels at once per station (USB hubs are slow);
- a target names the station it is reached through (`Target.via`); the connector also
  lists what a station has plugged in (`adb devices -l`, parsed here);
- every command first asks `adb get-state`, so what the station says about the device
  (unauthorized, offline, not found) is told apart from what the device printed: the
  station's words come back tagged with a one-off token the device never sees;
- an upload lands on the station, is pushed to a temporary name on the device, checked
  by sha256 there, then renamed into place (and older halves from an interrupted upload
  to the same path are removed): a device unplugged mid-push keeps no half-written file
  where the real one goes, and the next run starts again from the top;
- a station that cannot be reached is tried once per command: every device on it then
  fails with the same one-line error.
"""

from __future__ import annotations

import re
import shlex
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mdm.fleet.transport import (
    CommandResult,
    CommandTimeout,
    Credentials,
    FleetError,
    OutputTooLarge,
    Stdin,
    StepFailed,
    Target,
    Timeouts,
    Transport,
    Unreachable,
    checked_upload,
    on_device,
)

if TYPE_CHECKING:  # paramiko is imported only when a station is reached
    from mdm.fleet.ssh import ParamikoTransport

DEFAULT_STATION_CONCURRENCY = 8
_STATION_SAYS = 125  # the exit status of a station-side refusal (tagged with the token)


class DeviceUnauthorized(FleetError):
    """The phone has not accepted the station's adb key (the USB debugging prompt)."""

    kind = "unauthorized"


class DeviceOffline(FleetError):
    """adb sees the phone but cannot talk to it (booting, a bad cable, a stuck adbd)."""

    kind = "offline"


class DeviceNotAttached(FleetError):
    """The station's adb does not see the phone: not plugged in, or USB debugging off."""

    kind = "not_attached"


_ADB_LOST = 255  # adb shell's exit status when the device's transport goes away


class DeviceUnplugged(FleetError):
    """The phone went away in the middle of a step; nothing was renamed into place."""

    kind = "unplugged"


class StationUnreachable(Unreachable):
    """The station itself could not be reached; every device on it fails with this."""

    kind = "station_unreachable"
    transient = False  # tried once per command; retrying per device would be N attempts


@dataclass(frozen=True)
class Station:
    """A registered station: its name, where to reach it (with its pinned key), its limit."""

    name: str
    target: Target
    concurrency: int = DEFAULT_STATION_CONCURRENCY


def classify(serial: str, station: str, said: str) -> FleetError:
    """Turn what a station's adb said about a device into a named error."""
    text = said.strip()
    first = text.splitlines()[0] if text else "(no message)"
    where = f"on station {station}: {first}"
    if "unauthorized" in text:
        return DeviceUnauthorized(serial, f"{where} (the USB debugging prompt was not"
                                          " accepted on the phone)")
    if "offline" in text:
        return DeviceOffline(serial, where)
    if "no devices/emulators found" in text or "not found" in text:
        return DeviceNotAttached(serial, where)
    return StepFailed(serial, where)


class _Link:
    """One SSH connection to a station, shared by its devices, opened on first use.

    It stays open until the command run closes it, so a station's devices share one
    connection however their work is spread over the run.
    """

    def __init__(self, station: Station, credentials: Credentials, timeouts: Timeouts) -> None:
        self.station = station
        self.credentials = credentials
        self.timeouts = timeouts
        self.channels = threading.BoundedSemaphore(max(1, station.concurrency))
        self._lock = threading.Lock()
        self._users = 0
        self._conn: ParamikoTransport | None = None
        self._failed: FleetError | None = None

    def acquire(self, serial: str) -> ParamikoTransport:
        with self._lock:
            if self._failed is None and self._conn is None:
                from mdm.fleet.ssh import ParamikoTransport

                try:
                    self._conn = ParamikoTransport(self.station.target, self.credentials,
                                                   self.timeouts)
                except FleetError as exc:
                    self._failed = exc
            if self._failed is not None:
                raise StationUnreachable(serial, f"station {self.station.name} unreachable:"
                                                 f" {self._failed.message}")
            assert self._conn is not None
            self._users += 1
            return self._conn

    def release(self) -> None:
        with self._lock:
            self._users -= 1

    def close(self) -> None:
        """Close the connection (at the end of the command run: it carries all its work)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def get_state_script(serial: str, token: str) -> str:
    """Return the station-side check that adb sees the phone (its words tagged by token)."""
    return (f"s=$(adb -s {serial} get-state 2>&1) ||"
            f" {{ printf '%s\\n' \"{token}$s\" >&2; exit {_STATION_SAYS}; }}; ")


def adb_shell_script(serial: str, token: str, command: str) -> str:
    """Return the station-side script that runs a device command with `adb shell`.

    `serial` is already quoted for the shell; `command` is the device's wrapped form.
    """
    return get_state_script(serial, token) + f"exec adb -s {serial} shell {shlex.quote(command)}"


class StationTransport:
    """One device on a station: the Transport contract over `adb -s SERIAL`."""

    def __init__(self, target: Target, link: _Link) -> None:
        self.target = target
        self._link = link
        self._conn: ParamikoTransport | None = link.acquire(target.name)
        self._serial = shlex.quote(target.name)

    @property
    def station(self) -> str:
        return self._link.station.name

    def _station_run(self, script: str, timeout: float, stdin: Stdin = None,
                     max_output: int | None = None) -> CommandResult:
        if self._conn is None:
            raise StepFailed(self.target.name, "the transport is closed")
        name, station = self.target.name, self.station
        try:
            with self._link.channels:
                return self._conn.run(script, timeout=timeout, stdin=stdin,
                                      max_output=max_output)
        except OutputTooLarge as exc:
            raise OutputTooLarge(name, exc.message) from None
        except CommandTimeout as exc:
            raise CommandTimeout(name, f"via station {station}: {exc.message}", exc.seconds,
                                 f"station {station}") from None
        except Unreachable as exc:
            raise StationUnreachable(name, f"station {station}: {exc.message}") from None

    def _check(self, result: CommandResult, token: str) -> None:
        """Raise the named error if the station (not the device) refused the step."""
        said = result.stderr.decode("utf-8", "replace")
        if result.exit_status == _STATION_SAYS and said.startswith(token):
            raise classify(self.target.name, self.station, said[len(token):])

    def _get_state(self, token: str) -> str:
        return get_state_script(self._serial, token)

    def run(self, command: str, timeout: float | None = None,
            stdin: Stdin = None, max_output: int | None = None) -> CommandResult:
        """Run one command on the device with `adb shell`, under the device's own timeout."""
        limit = timeout if timeout is not None else self._link.timeouts.command
        token = f"mdm-station-{uuid.uuid4().hex}: "
        script = adb_shell_script(self._serial, token, on_device(command, int(limit) + 1))
        result = self._station_run(script, limit + 2, stdin, max_output)
        self._check(result, token)
        if result.exit_status == _ADB_LOST:  # adb's own failure: is the phone still there?
            state = self._station_run(f"adb -s {self._serial} get-state 2>&1", 10)
            now = state.text.strip()[:120]
            if now != "device":
                raise DeviceUnplugged(self.target.name, f"the phone went away during a step"
                                      f" on station {self.station} (adb: {now}); nothing was"
                                      " renamed into place: run the command again")
        return CommandResult(command, result.exit_status, result.stdout, result.stderr,
                             result.seconds)

    def put(self, data: bytes, remote_path: str, mode: str = "0644") -> str:
        """Push to a temporary name, check sha256 on the device, then rename into place."""
        from mdm.fleet.ssh import upload_plan

        expected, final, tmp = upload_plan(data, remote_path, mode)
        token = f"mdm-station-{uuid.uuid4().hex}: "
        s = self._serial
        resolve = f'd={tmp}; mkdir -p "$(dirname "$d")" && echo "$d"'
        finish = (f'h=$(sha256sum {tmp}) && h=${{h%% *}} && echo "$h" &&'
                  f' if [ "$h" = {expected} ]; then chmod {mode} {tmp} && mv -f {tmp} {final}'
                  f' && rm -f {final}.mdm-*; else rm -f {tmp}; exit 3; fi')
        gone = (f'st=$(adb -s {s} get-state 2>&1); printf "%s\\n" "{token}interrupted:'
                f' $(head -c 300 "$E" | tr "\\n" " ") [now: $st]" >&2; exit {_STATION_SAYS}')
        script = (self._get_state(token)
                  + 'L=$(mktemp) && E=$(mktemp) || exit 1; trap \'rm -f "$L" "$E"\' EXIT; '
                  + 'cat > "$L" || exit 1; '
                  + f'd=$(adb -s {s} shell {shlex.quote(resolve)} 2>"$E") || {{ {gone}; }}; '
                  + 'd=$(printf %s "$d" | tr -d "\\r"); '
                  + f'adb -s {s} push "$L" "$d" >/dev/null 2>"$E" || {{ {gone}; }}; '
                  + f'adb -s {s} shell {shlex.quote(finish)}')
        limit = self._link.timeouts.command
        result = self._station_run(script, limit, stdin=data)
        said = result.stderr.decode("utf-8", "replace")
        if result.exit_status == _STATION_SAYS and said.startswith(token):
            if "interrupted" in said and "[now: device]" not in said:
                why = said[len(token) + len("interrupted:"):].strip()[:400]
                raise DeviceUnplugged(self.target.name, f"upload to {remote_path} interrupted"
                                      f" on station {self.station} ({why}); nothing was"
                                      " renamed into place: run the command again")
            self._check(result, token)
        return checked_upload(self.target.name, remote_path, expected, result, said)

    def host_key(self) -> str:
        """Return the fingerprint of the station's key (the device has none of its own)."""
        if self._conn is None:
            raise StepFailed(self.target.name, "the transport is closed")
        return self._conn.host_key()

    def close(self) -> None:
        if self._conn is not None:
            self._conn = None
            self._link.release()

    def __enter__(self) -> StationTransport:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_SERIAL = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STATES = ("device", "unauthorized", "offline", "no", "bootloader", "recovery", "sideload",
           "unknown", "authorizing", "connecting", "host", "rescue")
LIST_TIMEOUT = 30.0


def parse_devices(text: str, station: str) -> list[dict[str, str]]:
    """Parse `adb devices -l`: one dict per device (serial, state, usb, model…)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices"):
            continue
        parts = line.split()
        if len(parts) < 2 or not _SERIAL.match(parts[0]) or parts[1] not in _STATES:
            raise StepFailed(station, f"adb devices printed a line mdm cannot read:"
                                      f" {line[:80]!r}")
        item = {"serial": parts[0], "state": parts[1]}
        for extra in parts[2:]:
            key, _, value = extra.partition(":")
            if key in ("usb", "product", "model", "device", "transport_id"):
                item[key] = value[:64]
        out.append(item)
    return out


class StationConnector:
    """Opens each device's transport by its route: through its station, else directly.

    A target's `via` names its station; all the devices on one station share that
    station's one SSH connection (each command its own channel, at most the station's
    concurrency at once).
    """

    def __init__(self, stations: Mapping[str, Station], credentials: Credentials,
                 timeouts: Timeouts | None = None) -> None:
        t = timeouts or Timeouts()
        self._links = {name: _Link(s, credentials, t) for name, s in stations.items()}

    def _link(self, station: str, name: str) -> _Link:
        link = self._links.get(station)
        if link is None:
            raise StepFailed(name, f"station {station} is not registered")
        return link

    def connect(self, target: Target) -> StationTransport:
        """Open a device's transport through the station its target names."""
        return StationTransport(target, self._link(target.via or "", target.name))

    def route(self, direct: Callable[[Target], Transport]) -> Callable[[Target], Transport]:
        """Return a connect function that picks the route per device (by its `via`)."""

        def connect(target: Target) -> Transport:
            return self.connect(target) if target.via else direct(target)

        return connect

    def close(self) -> None:
        """Close every station connection the run opened."""
        for link in self._links.values():
            link.close()

    def attached(self, station: str) -> list[dict[str, str]]:
        """Ask a station's adb what is plugged in (`adb devices -l`), over its connection."""
        link = self._link(station, station)
        conn = link.acquire(station)
        try:
            with link.channels:
                result = conn.run("adb devices -l", timeout=LIST_TIMEOUT, max_output=1 << 20)
        except Unreachable as exc:
            raise StationUnreachable(station, f"station {station}: {exc.message}") from None
        finally:
            link.release()
        if not result.ok:
            said = result.stderr.decode(errors="replace")[:200]
            raise StepFailed(station, f"adb devices failed (exit {result.exit_status}): {said}")
        return parse_devices(result.text, station)


__all__ = ["DeviceNotAttached", "DeviceOffline", "DeviceUnauthorized", "DeviceUnplugged",
           "Station", "StationConnector", "StationTransport", "StationUnreachable",
           "classify", "parse_devices"]
