"""Start, inspect, break and stop a lab of real sshd devices on 127.0.x.y.

Only loopback addresses are used. Every daemon is started with its own config and PID
file and stopped by that PID, after checking that the PID's command line is still that
daemon's (PIDs are reused). Every session a device runs records its session id
(run/sessions/), so stopping a device also stops what its sessions left running after the
connection went (TERM, then KILL after a grace period), by PID. The lab's folders are
0700 and its files 0600, whatever the umask: they hold keys, serials and IMEIs.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mdm import examples
from mdm.errors import InputError, MdmError
from mdm.fleet.keys import fingerprint_of_line, generate_ed25519

SSHD = Path("/usr/sbin/sshd")
BIN = Path(__file__).parent / "bin"
STATION_BIN = Path(__file__).parent / "station_bin"
# What each fault does is in docs/fleet.md (a test keeps it and `lab fault --help` whole).
FAULTS = (
    "offline", "slow", "swapped", "identity", "unencrypted", "pm-install-fail",
    "corrupt-upload", "slow-answer",
    # what the device's sshd offers
    "weak-cipher", "weak-mac", "weak-kex",
    # hostile output: the device alone must fail, the fleet goes on
    "dpc-forged-separator", "dpc-status-list", "dpc-sha-list", "dpc-details-strings",
    "binary-output", "huge-facts", "huge-prop", "huge-versioncode", "patch-unknown",
    # what a station's adb sees of a plugged device
    "unauthorized", "unplug-mid-push",
)
# Faults the lab's DPC shows in the status file it writes (see bin/dpc).
DPC_FAULTS = ("dpc-forged-separator", "dpc-status-list", "dpc-sha-list", "dpc-details-strings",
              "binary-output")
SSHD_FAULTS = {"weak-cipher": ["Ciphers aes128-cbc"],
               "weak-mac": ["Ciphers aes128-ctr", "MACs hmac-sha1"],
               "weak-kex": ["KexAlgorithms diffie-hellman-group14-sha1"]}
GRACE = 5.0  # seconds a stopped process has between TERM and KILL
LAB_ORDER = "PO-LAB-0001"
LAB_TAC = "35332510"


@dataclass
class LabStation:
    """A provisioning station: its own sshd, and an adb that reaches the devices plugged in."""

    name: str
    host: str
    port: int
    dir: str

    @property
    def serial(self) -> str:  # what messages name a daemon by
        return self.name

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def path(self) -> Path:
        return Path(self.dir)


@dataclass
class LabDevice:
    serial: str
    imei1: str
    host: str
    port: int
    dir: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def path(self) -> Path:
        return Path(self.dir)


def default_dir() -> Path:
    """Return the lab folder as the settings name it: MDM_LAB, else `lab` in mdm.toml,
    else lab/ beside the inventory."""
    from mdm import config

    return config.load().lab


def _address(index: int) -> str:
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _factory_props(serial: str, patch: str) -> dict[str, str]:
    # A Note 4 as the bench leaves it in 2015: Samsung's 5.1.1, whose builds report a
    # security patch level (the lab's is recent, so its devices can be compliant today).
    build = examples.NOTE4_2015
    return {
        "ro.serialno": serial, "ro.boot.serialno": serial,
        "ro.product.manufacturer": "samsung", "ro.product.model": "SM-N910F",
        "ro.product.brand": "samsung", "ro.product.name": "trltexx",
        "ro.build.version.release": build.release, "ro.build.version.sdk": str(build.sdk),
        "ro.build.version.security_patch": patch, "ro.build.id": build.build_id,
        "ro.build.display.id": f"{build.build_id}.{build.firmware}",
        "ro.crypto.state": "encrypted", "ro.crypto.type": "block",
    }


FACTORY_SETTINGS = {
    "global": {"adb_enabled": "0", "development_settings_enabled": "0", "auto_time": "1",
               "auto_time_zone": "1", "device_provisioned": "1"},
    "secure": {"install_non_market_apps": "0"},
    "system": {"screen_off_timeout": "600000"},
}
# What the network operator pre-loads before delivery (as EE did for Cumbria in 2015).
FACTORY_PACKAGES = [("com.android.chrome", 272019, "54.0.2840.85"),
                    ("uk.police.mdm.dpc", 300, "3.0.0"),
                    ("uk.police.cumbria.enotebook", 10402, "1.4.2"),
                    ("uk.police.cumbria.vpn", 120, "1.2.0")]


def _mkdir(path: Path) -> None:
    """Create a folder (and missing parents) only its owner can enter, whatever the umask."""
    if path.is_dir():
        return
    if not path.parent.exists():
        _mkdir(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)


def _write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write a file only its owner can read (or run, with mode 0700), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)
        fh.write(data.encode() if isinstance(data, str) else data)


def _write_kv(path: Path, values: dict[str, str]) -> None:
    _write(path, "".join(f"{k}={v}\n" for k, v in sorted(values.items())))



# Each role's principal, as a device's authorised principals file accepts it: a login by a
# certificate naming it runs the lab shell told that role (bin/mdm-shell enforces it).
PRINCIPALS = ("mdm-admin", "mdm-it", "mdm-rollout", "mdm-helpdesk")
SHELL = "$HOME/bin/mdm-shell"  # sshd runs a key's command= in the login shell: $HOME expands


def principals_file(principals: tuple[str, ...] = PRINCIPALS, shell: str = SHELL) -> str:
    """Return an authorised principals file: each principal runs the shell with its role."""
    return "".join(f'restrict,command="{shell} --principal {p}" {p}\n' for p in principals)


# The principals the device holds to a few operations; any other runs every command.
RESTRICTED = ("mdm-helpdesk", "mdm-rollout")
# The variable parts of a command mdm sends, as they sit in the allowed forms: the facts
# boundary, a queued command's id, the seconds of the device's timeout (N) and of the
# station's (M), the serial a station's adb is told and the station's one-off token.
# bin/mdm-allow matches each with a strict character class, only where it stands.
SLOTS = {"@B@": "----mdm-[0-9a-f]{32}----", "@ID@": "[0-9a-f]{32}",
         "@N@": "[1-9][0-9]{0,5}", "@M@": "[1-9][0-9]{0,5}",
         "@S@": "[A-Za-z0-9._:-]{1,64}", "@T@": "mdm-station-[0-9a-f]{32}: "}


def allowed_commands() -> dict[str, list[str]]:
    """Return, per restricted principal, the exact commands mdm sends for its operations.

    Built by the same code the driver and the transports use (the built-in profile, the
    device's `timeout` wrapper, the station's `adb shell` script), with each variable part
    a slot of SLOTS. The device shell refuses anything else from these principals.
    """
    import dataclasses

    from mdm.driver.shell import command_line
    from mdm.fleet import profiles
    from mdm.fleet.station import adb_shell_script
    from mdm.fleet.transport import on_device

    p = dataclasses.replace(profiles.load("android"), boundary="@B@")
    reads = [p.facts_command(), p.status_command(), p.facts["packages"]]
    commands = [command_line(p, action, "@ID@") for action in ("lock", "wipe")]
    roles = {"mdm-rollout": reads, "mdm-helpdesk": reads + commands}
    out: dict[str, list[str]] = {}
    for principal, forms in roles.items():
        direct = [on_device(c, "@N@") for c in forms]
        station = [on_device(adb_shell_script("@S@", "@T@", c), "@M@") for c in direct]
        out[principal] = direct + station + [on_device("adb devices -l", "@M@")]
    return out


@functools.cache
def _allowed_text() -> str:
    return json.dumps({"slots": SLOTS, "principals": allowed_commands()}, indent=1)


def _allowed_file(home: Path) -> None:
    """Write the allowed commands per restricted principal, which bin/mdm-allow reads."""
    _write(home / "etc" / "allowed_commands.json", _allowed_text())


def plain_key_line(public_key: str, shell: str = SHELL) -> str:
    """Return the authorized_keys line of a plain (enrolment) key: the shell, every right."""
    return f'restrict,command="{shell}" {public_key.strip()}\n'


def _sshd_config(host: str, port: int, home: Path, extra: list[str]) -> str:
    """Return a lab sshd's config: loopback only, its own key, the lab shell for every login.

    It trusts the user CA in etc/trusted_user_ca_keys (empty: none yet) for the principals
    in etc/auth_principals, refuses what etc/revoked_keys (an OpenSSH KRL; empty: nothing
    revoked) lists, and still accepts the plain keys in etc/authorized_keys. Every key line
    and principal line names the shell (command=), so no login gets a bare shell.
    """
    return "\n".join([
        f"ListenAddress {host}:{port}",
        f"HostKey {home}/etc/host_key",
        f"PidFile {home}/run/sshd.pid",
        f"AuthorizedKeysFile {home}/etc/authorized_keys",
        f"TrustedUserCAKeys {home}/etc/trusted_user_ca_keys",
        f"AuthorizedPrincipalsFile {home}/etc/auth_principals",
        f"RevokedKeys {home}/etc/revoked_keys",
        "ExposeAuthInfo yes",
        f"AllowUsers {getpass.getuser()}",
        "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitTTY no", "X11Forwarding no",
        "AllowTcpForwarding no", "AllowAgentForwarding no", "PrintMotd no",
        "LogLevel ERROR", *extra,
        "",
    ])


def _trust_files(home: Path, public_key: str) -> None:
    """Write a new daemon's trust: the operator's plain key, no CA yet, nothing revoked.

    A copy of each is kept in etc/factory/, which a reset puts back.
    """
    _mkdir(home / "etc" / "factory")
    files = {"authorized_keys": plain_key_line(public_key), "trusted_user_ca_keys": "",
             "auth_principals": principals_file(), "revoked_keys": ""}
    for name, text in files.items():
        _write(home / "etc" / name, text)
        _write(home / "etc" / "factory" / name, text)


def _factory_trust(home: Path) -> None:
    """Put back the trust the lab made the daemon with (a reset: the CA and KRL go)."""
    factory = home / "etc" / "factory"
    for name in ("authorized_keys", "trusted_user_ca_keys", "auth_principals", "revoked_keys"):
        if (factory / name).exists():
            shutil.copyfile(factory / name, home / "etc" / name)
    (home / "etc" / "revoked_keys.version").unlink(missing_ok=True)


class Lab:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_dir()).absolute()
        self.state_file = self.root / "lab.json"

    # -- state ---------------------------------------------------------------------
    def devices(self) -> list[LabDevice]:
        """Return the lab's devices (empty if there is no lab)."""
        if not self.state_file.exists():
            return []
        data = json.loads(self.state_file.read_text())
        return [LabDevice(**d) for d in data["devices"]]

    def device(self, serial: str) -> LabDevice:
        """Return one lab device by serial."""
        for d in self.devices():
            if d.serial == serial:
                return d
        raise InputError(f"no lab device {serial!r}", "list them with: mdm lab status")

    # -- up / down -----------------------------------------------------------------
    def up(self, count: int, public_key: str, seed: int = 1) -> list[LabDevice]:
        """Create and start `count` devices that accept the operator's key."""
        if not SSHD.exists():
            raise MdmError(f"{SSHD} is missing", "install OpenSSH: bash scripts/setup.sh")
        if not 1 <= count <= 2000:
            raise InputError(f"a lab has 1 to 2000 devices, not {count}")
        if self.devices():
            raise InputError(f"a lab is already up in {self.root}",
                             "stop it first with: mdm lab down")
        try:  # sshd's privilege-separation directory, needed when it runs as root
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        except PermissionError:
            pass  # not root: sshd runs unprivileged and does not need it
        _mkdir(self.root)
        port = _free_port(_address(0))
        rows = examples.generate_manifest(count, seed=seed, order=LAB_ORDER, tac=LAB_TAC)
        devices = [LabDevice(r["serial_number"], r["imei1"], _address(i), port,
                             str(self.root / "devices" / r["serial_number"]))
                   for i, r in enumerate(rows)]
        patch = date.today().replace(day=1).isoformat()
        for d in devices:
            self._create(d, public_key, patch)
        self._save(devices, seed)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._start, devices))
        return devices

    def _save(self, devices: list[LabDevice], seed: int) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        _write(tmp, json.dumps({"seed": seed, "user": getpass.getuser(),
                                "devices": [asdict(d) for d in devices]}, indent=1))
        tmp.replace(self.state_file)

    def _create(self, d: LabDevice, public_key: str, patch: str) -> None:
        home = d.path
        for sub in ("bin", "etc", "run/sessions", "log", "faults", "settings", "mdm-dpc/inbox",
                    "factory/settings", "mdm-staging"):
            _mkdir(home / sub)
        for script in BIN.iterdir():
            text = script.read_text()
            if text.startswith("#!/usr/bin/env python3"):
                text = f"#!{sys.executable} -I" + text[len("#!/usr/bin/env python3"):]
            _write(home / "bin" / script.name, text, 0o700)
        props = _factory_props(d.serial, patch)
        for place in (home, home / "factory"):
            _write_kv(place / "props", props)
            _write(place / "packages", "".join(f"{n} {c} {v}\n" for n, c, v in FACTORY_PACKAGES))
            for ns, values in FACTORY_SETTINGS.items():
                _write_kv(place / "settings" / ns, values)
        for log in ("commands", "events"):
            _write(home / "log" / log, "")
        generate_ed25519(home / "etc" / "host_key", comment=f"lab-{d.serial}")
        (home / "etc" / "host_key.pub").chmod(0o600)
        _trust_files(home, public_key)
        _allowed_file(home)
        _write(home / "etc" / "sshd_config", self._config(d))

    def _config(self, d: LabDevice) -> str:
        home = d.path
        return _sshd_config(d.host, d.port, home, [
            f"SetEnv HOME={home} PATH={home}/bin:/usr/bin:/bin",
            *[line for fault, lines in SSHD_FAULTS.items()
              if (home / "faults" / fault).exists() for line in lines]])

    def _start(self, d: LabDevice | LabStation) -> None:
        if self._pid(d):
            return
        result = subprocess.run([str(SSHD), "-f", str(d.path / "etc" / "sshd_config")],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise MdmError(f"lab device {d.serial}: sshd did not start: {result.stderr.strip()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((d.host, d.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise MdmError(f"lab device {d.serial}: sshd is not listening on {d.address}")

    def _pid(self, d: LabDevice | LabStation) -> int | None:
        """Return the daemon's PID if it is running and is still this device's sshd."""
        pid_file = d.path / "run" / "sshd.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        return pid if str(d.path / "etc" / "sshd_config") in cmdline else None

    def _sessions(self, d: LabDevice | LabStation, table: dict[int, tuple[int, int]]) -> list[int]:
        """Return the PIDs left by the device's sessions, checked to be this device's."""
        folder = d.path / "run" / "sessions"
        sids = {int(p.name) for p in folder.iterdir() if p.name.isdigit()} \
            if folder.is_dir() else set()
        home = f"HOME={d.path}".encode() + b"\0"
        out = []
        for pid, (_, sid) in table.items():
            if sid in sids:
                try:  # the device's own environment: not a stranger that reused the PID
                    if home in Path(f"/proc/{pid}/environ").read_bytes():
                        out.append(pid)
                except OSError:
                    continue
        return out

    def _stop(self, d: LabDevice | LabStation) -> None:
        table = _process_table()
        pid = self._pid(d)
        victims = ([pid] + _descendants(pid, table) if pid else []) + self._sessions(d, table)
        victims = list(dict.fromkeys(victims))
        _terminate(victims)
        (d.path / "run" / "sshd.pid").unlink(missing_ok=True)
        sessions = d.path / "run" / "sessions"
        for entry in sessions.iterdir() if sessions.is_dir() else []:
            entry.unlink(missing_ok=True)

    def down(self, keep: bool = False) -> int:
        """Stop every daemon (and its sessions) by PID; remove the lab unless `keep`."""
        devices = self.devices()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._stop, [*devices, *self.stations()]))
        if not keep and self.root.exists():
            shutil.rmtree(self.root)
        return len(devices)

    def pids(self) -> list[int]:
        """Return the PIDs of every running lab daemon and of what its sessions run."""
        table = _process_table()
        out: list[int] = []
        daemons: list[LabDevice | LabStation] = [*self.devices(), *self.stations()]
        for d in daemons:
            pid = self._pid(d)
            out += ([pid] + _descendants(pid, table) if pid else []) + self._sessions(d, table)
        return list(dict.fromkeys(out))

    # -- status and faults -----------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Return each device's serial, address, host-key fingerprint, state and faults."""
        rows = []
        for d in self.devices():
            public = (d.path / "etc" / "host_key.pub").read_text()
            rows.append({"serial": d.serial, "imei1": d.imei1, "address": d.address,
                         "host_key": " ".join(public.split()[:2]),
                         "fingerprint": fingerprint_of_line(public),
                         "running": self._pid(d) is not None,
                         "stations": self.plugged(d),
                         "faults": sorted(p.name for p in (d.path / "faults").iterdir())})
        return rows

    def fault(self, serial: str, kind: str, clear: bool = False, delay: float = 3.0) -> None:
        """Switch a fault on (or off with clear) on one lab device."""
        if kind not in FAULTS:
            raise InputError(f"unknown fault {kind!r}", "use one of: " + ", ".join(FAULTS))
        d = self.device(serial)
        marker = d.path / "faults" / kind
        if clear:
            marker.unlink(missing_ok=True)
        elif kind in ("slow", "slow-answer") or not marker.exists():
            _write(marker, str(delay) if kind in ("slow", "slow-answer") else "on\n")
        hook = getattr(self, "_fault_" + kind.replace("-", "_"), None)
        if hook:
            hook(d, not clear, delay)
        if kind in DPC_FAULTS:
            self._dpc_render(d)
        if kind in SSHD_FAULTS:
            self._reconfigure(d)

    def clear_all(self, serial: str) -> None:
        """Clear every fault on a device."""
        d = self.device(serial)
        for marker in sorted((d.path / "faults").iterdir()):
            self.fault(serial, marker.name, clear=True)

    def reset(self, serial: str) -> None:
        """Clear every fault, unplug it, and put the device back to its factory state."""
        self.clear_all(serial)
        if self.plugged(self.device(serial)):
            self.unplug(serial)
        d = self.device(serial)
        factory = d.path / "factory"
        for name in ("props", "packages", "settings/global", "settings/secure",
                     "settings/system"):
            shutil.copyfile(factory / name, d.path / name)
        for leftover in (d.path / "mdm-dpc").rglob("*"):
            if leftover.is_file():
                leftover.unlink()
        for leftover in (d.path / "mdm-staging").iterdir():
            leftover.unlink()
        for log in ("commands", "events"):
            _write(d.path / "log" / log, "")
        (d.path / "enotebook" / "unsynced").unlink(missing_ok=True)
        _factory_trust(d.path)
        self._first_key(d)
        for entry in (d.path / "run" / "sessions").iterdir():  # forget finished sessions
            if not (entry.name.isdigit() and _alive(int(entry.name))):
                entry.unlink(missing_ok=True)

    def _first_key(self, d: LabDevice) -> None:
        """Give back the host key the lab made, if a wipe replaced it (as a reset does)."""
        key, first = d.path / "etc" / "host_key", d.path / "etc" / "host_key.lab"
        if not first.exists():
            return
        first.replace(key)
        Path(str(first) + ".pub").replace(str(key) + ".pub")
        if self._pid(d) is not None:
            self._stop(d)
            self._start(d)

    def notebook(self, serial: str, unsynced: int) -> None:
        """Set how many e-notebook entries the device holds unsynced (its DPC reports it)."""
        if not 0 <= unsynced <= 1_000_000:
            raise InputError(f"unsynced entries must be 0 to 1000000, not {unsynced}")
        d = self.device(serial)
        _mkdir(d.path / "enotebook")
        _write(d.path / "enotebook" / "unsynced", f"{unsynced}\n")
        self._dpc_render(d)

    def commands(self, serial: str) -> list[dict[str, str]]:
        """Return the command log the device's DPC keeps: each id, kind and state, in order."""
        path = self.device(serial).path / "mdm-dpc" / "commands.log"
        if not path.exists():
            return []
        return [dict(zip(("at", "id", "kind", "state"), line.split("\t"), strict=True))
                for line in path.read_text().splitlines() if line.count("\t") == 3]

    def _fault_offline(self, d: LabDevice, on: bool, _delay: float) -> None:
        if on or not self.plugged(d):  # a plugged device has no network route to start
            (self._stop if on else self._start)(d)

    def _fault_slow(self, d: LabDevice, on: bool, delay: float) -> None:
        # mdm runs each command as `timeout … sh -c CMD`: a `sh` first on the device's PATH
        # that waits before running CMD is a slow device whose wait is under the deadline.
        shim = d.path / "bin" / "sh"
        if on:
            _write(shim, '#!/bin/sh\nsleep "$(cat "$HOME/faults/slow")"\nexec /bin/sh "$@"\n',
                   0o700)
        else:
            shim.unlink(missing_ok=True)

    def _fault_swapped(self, d: LabDevice, on: bool, _delay: float) -> None:
        key = d.path / "etc" / "host_key"
        saved = d.path / "etc" / "host_key.orig"
        if on and not saved.exists():
            key.rename(saved)
            Path(str(key) + ".pub").rename(str(saved) + ".pub")
            generate_ed25519(key, comment=f"lab-{d.serial}-swapped")
        elif not on and saved.exists():
            key.unlink()
            saved.rename(key)
            Path(str(saved) + ".pub").replace(str(key) + ".pub")
        else:
            return
        running = self._pid(d) is not None
        self._stop(d)
        if running:
            self._start(d)

    def _set_prop(self, d: LabDevice, key: str, value: str | None) -> None:
        """Set a prop on the device (None: back to its factory value)."""
        path = d.path / "props"
        if value is None:
            value = next((ln.split("=", 1)[1] for ln in (d.path / "factory" / "props")
                          .read_text().splitlines() if ln.startswith(key + "=")), "")
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(key + "=")]
        _write(path, "\n".join(lines + [f"{key}={value}"]) + "\n")

    def _fault_identity(self, d: LabDevice, on: bool, _delay: float) -> None:
        self._set_prop(d, "ro.serialno", d.serial[:-3] + "ZZZ" if on else d.serial)

    def _fault_unencrypted(self, d: LabDevice, on: bool, _delay: float) -> None:
        self._set_prop(d, "ro.crypto.state", "unencrypted" if on else "encrypted")

    def _fault_patch_unknown(self, d: LabDevice, on: bool, _delay: float) -> None:
        self._set_prop(d, "ro.build.version.security_patch", "unknown" if on else None)

    def _dpc_render(self, d: LabDevice) -> None:
        """Have the device's DPC rewrite its status file in the shape its faults ask for."""
        subprocess.run([str(d.path / "bin" / "dpc"), "render"], env={
            "HOME": str(d.path), "PATH": f"{d.path}/bin:/usr/bin:/bin"},
            check=True, timeout=30, capture_output=True)

    def _reconfigure(self, d: LabDevice) -> None:
        """Rewrite the daemon's config (it offers what its faults say) and restart it."""
        _write(d.path / "etc" / "sshd_config", self._config(d))
        if self._pid(d) is not None:
            self._stop(d)
            self._start(d)

    def _fault_corrupt_upload(self, d: LabDevice, on: bool, _delay: float) -> None:
        shim = d.path / "bin" / "cat"
        if on:  # a `cat` that flips the first byte it passes on: damage in transit
            _write(shim, "#!/bin/sh\n/bin/cat \"$@\" | { head -c 1 | tr '\\000-\\377' "
                   "'\\001-\\377\\000'; /bin/cat; }\n", 0o700)
        else:
            shim.unlink(missing_ok=True)

    # -- stations: sshd plus adb, with USB-attached devices ------------------------------
    def stations(self) -> list[LabStation]:
        """Return the lab's provisioning stations (started with `station_up`)."""
        folder = self.root / "stations"
        out = []
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            state = entry / "station.json"
            if state.exists():
                out.append(LabStation(**json.loads(state.read_text())))
        return out

    def station(self, name: str) -> LabStation:
        """Return one lab station by name."""
        for s in self.stations():
            if s.name == name:
                return s
        raise InputError(f"no lab station {name!r}", "start one with: mdm lab station up NAME")

    def station_up(self, name: str, public_key: str) -> LabStation:
        """Create (if new) and start a station: its own sshd and host key, and `adb`."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
            raise InputError(f"station name {name!r} is not 1-31 of a-z, 0-9 and -",
                             "e.g. hq-bench")
        if not self.devices():
            raise InputError("no lab is up", "start one with: mdm lab up N")
        existing = {s.name: s for s in self.stations()}
        station = existing.get(name)
        if station is None:
            host = f"127.0.250.{1 + len(existing)}"
            if len(existing) >= 250:
                raise InputError("a lab has at most 250 stations")
            station = LabStation(name, host, _free_port(host),
                                 str(self.root / "stations" / name))
            home = station.path
            for sub in ("bin", "etc", "run/sessions", "log", "attached", "adb-tmp"):
                _mkdir(home / sub)
            for script in (*STATION_BIN.iterdir(), BIN / "mdm-shell", BIN / "mdm-allow"):
                text = script.read_text()
                if text.startswith("#!/usr/bin/env python3"):
                    text = f"#!{sys.executable} -I" + text[len("#!/usr/bin/env python3"):]
                _write(home / "bin" / script.name, text, 0o700)
            _write(home / "log" / "commands", "")
            generate_ed25519(home / "etc" / "host_key", comment=f"lab-station-{name}")
            (home / "etc" / "host_key.pub").chmod(0o600)
            _trust_files(home, public_key)
            _allowed_file(home)
            _write(home / "etc" / "sshd_config", self._station_config(station))
            _write(home / "station.json", json.dumps(asdict(station)))
        self._start(station)
        return station

    def _station_config(self, s: LabStation) -> str:
        home = s.path
        return _sshd_config(s.host, s.port, home, [
            "MaxSessions 64",
            f"SetEnv HOME={home} PATH={home}/bin:/usr/bin:/bin TMPDIR={home}/adb-tmp"])

    def station_down(self, name: str) -> None:
        """Stop a station's sshd (by PID); its devices stay plugged in."""
        self._stop(self.station(name))

    def station_status(self) -> list[dict[str, Any]]:
        """Return each station's name, address, host-key fingerprint, running, devices."""
        rows = []
        for s in self.stations():
            public = (s.path / "etc" / "host_key.pub").read_text()
            rows.append({"name": s.name, "address": s.address,
                         "host_key": " ".join(public.split()[:2]),
                         "fingerprint": fingerprint_of_line(public),
                         "running": self._pid(s) is not None,
                         "devices": sorted(p.name for p in (s.path / "attached").iterdir())})
        return rows

    def plugged(self, d: LabDevice) -> list[str]:
        """Return the stations a device is plugged into (one, unless its serial is cloned)."""
        return [s.name for s in self.stations() if (s.path / "attached" / d.serial).exists()]

    def plug(self, serial: str, station: str, debugging: bool = True) -> None:
        """Plug a device into a station's hub: it leaves the network (its sshd stops).

        As IT staff do at the bench, USB debugging is switched on first (settings global
        adb_enabled=1), unless `debugging` is False: the station's adb then cannot see it.
        """
        d, s = self.device(serial), self.station(station)
        if debugging:
            self._set_setting(d, "global", "adb_enabled", "1")
        attached = s.path / "attached"
        if (attached / serial).exists():
            return
        used = {p.read_text().split()[-1] for p in attached.iterdir()}
        port = next(str(n) for n in range(1, 10_000) if str(n) not in used)
        self._stop(d)
        _write(attached / serial, f"{d.dir} {port}\n")

    def _set_setting(self, d: LabDevice, namespace: str, key: str, value: str) -> None:
        """Set one of the device's settings, as `settings put` would."""
        path = d.path / "settings" / namespace
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(key + "=")]
        _write(path, "\n".join(sorted(lines + [f"{key}={value}"])) + "\n")

    def unplug(self, serial: str) -> list[str]:
        """Unplug a device from every station it is in; it is back on the network."""
        d = self.device(serial)
        were = self.plugged(d)
        for name in were:
            (self.station(name).path / "attached" / serial).unlink(missing_ok=True)
        if not (d.path / "faults" / "offline").exists():
            self._start(d)
        return were

    def manifest(self) -> list[dict[str, Any]]:
        """Return the supplier manifest rows for the lab's devices."""
        data = json.loads(self.state_file.read_text()) if self.state_file.exists() else None
        if not data:
            raise InputError("no lab is up", "start one with: mdm lab up N")
        return examples.generate_manifest(len(data["devices"]), seed=data["seed"],
                                          order=LAB_ORDER, tac=LAB_TAC)


def _process_table() -> dict[int, tuple[int, int]]:
    """Return every process's (parent PID, session id), read from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def _descendants(pid: int, table: dict[int, tuple[int, int]] | None = None) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, (ppid, _) in (table if table is not None else _process_table()).items():
        children.setdefault(ppid, []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _terminate(pids: list[int]) -> None:
    """TERM each process, wait up to GRACE seconds, then KILL what is left; reap ours."""
    if not pids:
        return
    for p in pids:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
        _reap(pids)
    for p in pids:
        if _alive(p):
            _signal(p, signal.SIGKILL)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
        _reap(pids)
    _reap(pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pids: list[int]) -> None:
    """Collect exited daemons that are our children (a test acting as subreaper)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def become_subreaper() -> None:
    """Adopt orphaned descendants (the daemonised sshds), so stopping them leaves no zombie."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
