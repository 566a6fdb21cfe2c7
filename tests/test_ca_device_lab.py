"""Devices trust the force's user CA: real lab sshd, certificates signed by ssh-keygen.

The CA and certificates are made here with OpenSSH's own ssh-keygen; the certificate of a
key lives beside it as `<key>-cert.pub`, which mdm presents. The revocation list stands in
for the inventory's (a KRL built by ssh-keygen -k, served as `mdm.ca.krl.current`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import rows

pytestmark = pytest.mark.backends

SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "policies"


def _keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, timeout=30,
                   stdin=subprocess.DEVNULL, capture_output=True)


class Authority:
    """A user CA made with ssh-keygen; signs operator keys; keeps a KRL."""

    def __init__(self, folder: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        folder.mkdir()
        self.key = folder / "ca"
        _keygen("-t", "ed25519", "-N", "", "-C", "test-ca", "-f", str(self.key))
        self.line = (folder / "ca.pub").read_text().strip()
        from mdm.fleet.keys import fingerprint_of_line

        self.fingerprint = fingerprint_of_line(self.line)
        self.db_path = db_path
        self.krl: tuple[int, bytes] | None = None
        module = types.ModuleType("mdm.ca.krl")
        module.current = lambda db: self.krl  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "mdm.ca.krl", module)

    def install(self) -> None:
        """Record the CA in the inventory, as mdm ca init does."""
        from mdm.fleet.keys import fingerprint_of_line

        rows(self.db_path, "INSERT INTO ca (id, public_line, fingerprint, created_at,"
             " created_by) VALUES (1, ?, ?, ?, ?)",
             (self.line, fingerprint_of_line(self.line), "2026-01-01T00:00:00Z", "admin"))

    def operator(self, name: str, principal: str, serial: int,
                 key: Path | None = None) -> Path:
        """Return a key with a certificate beside it (a copy of `key`, if given)."""
        folder = self.folder / name
        folder.mkdir()
        path = folder / "id_ed25519"
        if key is None:
            _keygen("-t", "ed25519", "-N", "", "-C", name, "-f", str(path))
        else:
            shutil.copyfile(key, path)
            path.chmod(0o600)
            shutil.copyfile(str(key) + ".pub", str(path) + ".pub")
        _keygen("-s", str(self.key), "-I", f"mdm:{name}:{serial}", "-n", principal,
                "-z", str(serial), "-V", "-5m:+1h", str(path) + ".pub")
        assert Path(str(path) + "-cert.pub").exists()
        return path

    def revoke(self, *serials: int) -> None:
        spec = self.folder / "revoked.txt"
        spec.write_text("".join(f"serial: {s}\n" for s in serials))
        out = self.folder / "krl"
        out.unlink(missing_ok=True)
        _keygen("-k", "-f", str(out), "-s", str(self.key) + ".pub", str(spec))
        version = (self.krl[0] if self.krl else 0) + 1
        self.krl = (version, out.read_bytes())


@pytest.fixture
def authority(tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Authority:
    return Authority(tmp_path / "ca", db_path, monkeypatch)


@pytest.fixture
def rolled(mdm: Any, enrolled: Callable[[int], list[Any]], authority: Authority,
           operator_key: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[Any]]:
    """N enrolled lab devices moved to CA trust by an admin whose key has a certificate."""

    def take(count: int) -> list[Any]:
        devices = enrolled(count)
        authority.install()
        admin = authority.operator("admin", "mdm-admin", 1, key=operator_key)
        monkeypatch.setenv("MDM_KEY", str(admin))
        result = mdm.json("ca", "rollout")
        assert result["done"] == sorted(d.serial for d in devices)
        return devices

    return take


def _log(device: Any) -> str:
    return (device.path / "log" / "commands").read_text()


def test_two_operators_with_certificates_reach_the_same_devices_and_each_is_named(
        mdm: Any, rolled: Callable[[int], list[Any]], authority: Authority,
        operator_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = rolled(2)
    for device in devices:  # the rollout took the plain key away
        assert (device.path / "etc" / "authorized_keys").read_text() == ""
    rows = {r["serial"]: r for r in mdm.json("ca", "status")}
    assert all(rows[d.serial]["ca_trusted"] and rows[d.serial]["plain_keys"] == 0
               for d in devices)
    for name, serial in (("alice", 7), ("bob", 8)):
        mdm("operators", "add", name, "--role", "it")
        monkeypatch.setenv("MDM_KEY", str(authority.operator(name, "mdm-it", serial)))
        assert len(mdm.json("devices", "refresh", "all", operator=name)["done"]) == 2
    for device in devices:
        log = _log(device)
        assert "by mdm:alice:7 as mdm-it" in log and "by mdm:bob:8 as mdm-it" in log

    # The enrolment key alone, with no certificate, is refused by every device's sshd now.
    for device in devices:
        refused = _ssh(device, operator_key, "getprop ro.serialno")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_a_plain_key_keeps_working_until_the_rollout_and_check_changes_nothing(
        mdm: Any, enrolled: Callable[[int], list[Any]], authority: Authority,
        operator_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = enrolled(1)[0]
    authority.install()
    plan = mdm.json("ca", "rollout", "--check")
    assert plan["devices"][0]["install_trust"] and plan["devices"][0]["remove_plain_key"]
    assert (device.path / "etc" / "trusted_user_ca_keys").read_text() == ""
    # No certificate beside the key: refused before any device is touched.
    refused = mdm("ca", "rollout", code=2)
    assert "mdm login" in refused.stderr
    assert mdm.json("queue", "list") == []
    assert _ssh(device, operator_key, "getprop ro.serialno").stdout.strip() == device.serial


def test_a_helpdesk_certificate_locks_but_the_device_refuses_its_policy_push(
        mdm: Any, rolled: Callable[[int], list[Any]], authority: Authority, inventory: Any,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    device = rolled(1)[0]
    person = next(p for p in inventory["roster"] if p["worker_type"] == "OFFICER"
                  and p["status"] == "ACTIVE")
    mdm("assign", device.serial, person["officer_id"])
    # The inventory is not the boundary (whoever can write its file can change a role):
    # here it would let hana push. Her certificate says helpdesk, and the device holds her
    # to that.
    mdm("operators", "add", "hana", "--role", "it")
    monkeypatch.setenv("MDM_KEY", str(authority.operator("hana", "mdm-helpdesk", 20)))
    events = (device.path / "log" / "events").read_text()

    pushed = mdm("policy", "push", device.serial, code=1, operator="hana")
    assert device.serial in pushed.stderr
    assert "refused: principal mdm-helpdesk may not run this command" in pushed.stderr
    assert not (device.path / "mdm-dpc" / "status.json").exists()
    assert (device.path / "log" / "events").read_text() == events
    assert "by mdm:hana:20 as mdm-helpdesk\trefused\t" in _log(device)

    mdm("lost", device.serial, "--lost", "--reported-by", person["officer_id"],
        "--where", "Penrith")
    assert [d["kind"] for d in mdm.json("queue", "run", operator="hana")["done"]] == ["lock"]
    assert (device.path / "mdm-dpc" / "locked").exists()
    assert "dpc locked by mdm:hana:20" in (device.path / "log" / "events").read_text()


def test_a_revoked_certificate_is_refused_once_the_list_arrives_and_offline_gets_it_later(
        mdm: Any, rolled: Callable[[int], list[Any]], authority: Authority, lab: Any) -> None:
    online, offline = rolled(2)
    leaver = authority.operator("leaver", "mdm-it", 31)
    assert all(_ssh(d, leaver, "getprop ro.serialno").returncode == 0 for d in (online, offline))
    authority.revoke(31)
    lab.lab.fault(offline.serial, "offline")
    queued = mdm.json("ca", "krl")
    assert (queued["krl_version"], queued["count"]) == (1, 2)
    run = mdm.json("queue", "run")
    assert [d["serial"] for d in run["done"]] == [online.serial]
    assert [d["serial"] for d in run["waiting"]] == [offline.serial]
    rows = {r["serial"]: r for r in mdm.json("ca", "status")}
    assert rows[online.serial]["krl_version"] == 1 and rows[online.serial]["krl_up_to_date"]
    assert rows[offline.serial]["krl_version"] is None
    assert not rows[offline.serial]["krl_up_to_date"]
    # The device that holds the list refuses the leaver's certificate.
    refused = _ssh(online, leaver, "getprop ro.serialno")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr

    # Back on: until the queue reaches it, it has no list, and still lets the leaver in.
    lab.lab.fault(offline.serial, "offline", clear=True)
    assert _ssh(offline, leaver, "getprop ro.serialno").returncode == 0
    assert [d["serial"] for d in mdm.json("queue", "run")["done"]] == [offline.serial]
    assert (offline.path / "etc" / "revoked_keys.version").read_text() == "1\n"
    assert _ssh(offline, leaver, "getprop ro.serialno").returncode == 255
    assert mdm.json("ca", "status", offline.serial)[0]["krl_up_to_date"]


def test_a_rollout_killed_midway_leaves_every_device_reachable_and_a_rerun_finishes(
        mdm: Any, enrolled: Callable[[int], list[Any]], authority: Authority, lab: Any,
        operator_key: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    devices = enrolled(4)
    authority.install()
    admin = authority.operator("admin", "mdm-admin", 1, key=operator_key)
    monkeypatch.setenv("MDM_KEY", str(admin))
    for device in devices[2:]:
        lab.lab.fault(device.serial, "slow", delay=3)
    mdm_bin = Path(sys.executable).parent / "mdm"
    proc = subprocess.Popen([str(mdm_bin), "ca", "rollout", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            (d.path / "etc" / "trusted_user_ca_keys").read_text() for d in devices):
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    for device in devices:
        lab.lab.fault(device.serial, "slow", clear=True)
    # Whatever the kill left, every device lets the admin in (plain key or certificate).
    assert len(mdm.json("devices", "refresh", "all")["done"]) == 4
    result = mdm.json("ca", "rollout")
    assert result["done"] == sorted(d.serial for d in devices)
    for device in devices:
        assert (device.path / "etc" / "authorized_keys").read_text() == ""
    assert len(mdm.json("devices", "refresh", "all")["done"]) == 4


@pytest.fixture
def bench(mdm: Any, lab: Any, station: Any, db_path: Path) -> str:
    """The lab's station, registered in this test's inventory with its confirmed key."""
    row = next(r for r in lab.lab.station_status() if r["name"] == station.name)
    created = (db_path.exists() if isinstance(db_path, Path) else  # a migrated template
               rows(db_path, "SELECT COUNT(*) FROM operators")[0][0] > 0)
    if not created:
        mdm("operators", "add", "admin")
    mdm("stations", "add", station.name, "--address", row["address"],
        "--host-key", row["fingerprint"])
    return str(station.name)


def test_enrolment_with_a_ca_installs_its_trust_directly_and_through_a_station(
        mdm: Any, lab: Any, delivered: Callable[[int], list[Any]], authority: Authority,
        bench: str, files: Callable[..., Path], operator_key: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    direct, plugged = delivered(2)
    authority.install()
    admin = authority.operator("admin", "mdm-admin", 1, key=operator_key)
    monkeypatch.setenv("MDM_KEY", str(admin))  # the plain key still opens new devices
    key = authority.line.split()[1]
    rows = (f"serial_number,address,host_key\n"
            f"{direct.serial},{direct.address},{lab.fingerprint(direct)}\n")
    mdm("enrol", "devices", "--from", files("pairing.csv", rows))
    lab.lab.plug(plugged.serial, bench)
    assert [d["serial"] for d in mdm.json("enrol", "station", bench)["done"]] == [plugged.serial]
    for device in (direct, plugged):
        assert key in (device.path / "etc" / "trusted_user_ca_keys").read_text()
        assert "--principal mdm-helpdesk\" mdm-helpdesk" in \
            (device.path / "etc" / "auth_principals").read_text()
    status = {r["serial"]: r for r in mdm.json("ca", "status")}
    assert all(status[d.serial]["ca_trusted"] and status[d.serial]["plain_keys"] == 1
               for d in (direct, plugged))
    # The phone's own sshd now lets a certificate in once it is back on its field route.
    lab.lab.unplug(plugged.serial)
    cert = authority.operator("it1", "mdm-it", 41)
    assert _ssh(plugged, cert, "getprop ro.serialno").stdout.strip() == plugged.serial
    assert "by mdm:it1:41 as mdm-it" in _log(plugged)


def _ssh(device: Any, key: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run one command on a lab device with OpenSSH's own client and this key."""
    known = device.path.parent.parent / f"known-{device.serial}"
    known.write_text(f"[{device.host}]:{device.port} "
                     + " ".join((device.path / "etc" / "host_key.pub").read_text().split()[:2])
                     + "\n")
    return subprocess.run(["ssh", "-F", "none", "-i", str(key), "-o", "IdentitiesOnly=yes",
                           "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=yes", "-p", str(device.port),
                           device.host, command], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_a_station_that_trusts_the_ca_holds_a_helpdesk_session_to_its_role(
        mdm: Any, lab: Any, inventory: Any, delivered: Callable[[int], list[Any]],
        authority: Authority, bench: str, station: Any, tmp_path: Path, operator_key: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mdm.lab.lab import _factory_trust

    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("MDM_POLICIES", str(folder))
    phone = delivered(1)[0]
    authority.install()
    monkeypatch.setenv("MDM_KEY", str(authority.operator("admin", "mdm-admin", 1,
                                                         key=operator_key)))
    lab.lab.plug(phone.serial, bench)
    try:
        mdm("enrol", "station", bench)
        trusted = mdm.json("ca", "station", bench)
        assert trusted["ca"] == authority.fingerprint
        assert authority.line.split()[1] in \
            (station.path / "etc" / "trusted_user_ca_keys").read_text()
        person = next(p for p in inventory["roster"] if p["worker_type"] == "OFFICER"
                      and p["status"] == "ACTIVE")
        mdm("assign", phone.serial, person["officer_id"])
        mdm("operators", "add", "hana", "--role", "it")  # the inventory would let her push
        monkeypatch.setenv("MDM_KEY", str(authority.operator("hana", "mdm-helpdesk", 50)))

        pushed = mdm("policy", "push", phone.serial, code=1, operator="hana")
        assert phone.serial in pushed.stderr
        assert "refused: principal mdm-helpdesk may not run this command" in pushed.stderr
        assert not (phone.path / "mdm-dpc" / "status.json").exists()
        # Reading the phone is the helpdesk's to do; the station's shell lets it through.
        refreshed = mdm.json("devices", "refresh", phone.serial, operator="hana")
        assert [d["serial"] for d in refreshed["done"]] == [phone.serial]
        log = (station.path / "log" / "commands").read_text()
        assert "by mdm:hana:50 as mdm-helpdesk\trefused\t" in log
        assert "by mdm:hana:50 as mdm-helpdesk\ttimeout" in log
        # The station's own form around a command mdm never sends: refused by the station.
        from mdm.fleet.station import adb_shell_script

        token = "mdm-station-" + "0" * 32 + ": "
        for inner in ("touch pwned", "pm list packages --show-versioncode ; touch pwned"):
            attack = _form(adb_shell_script(phone.serial, token, _form(inner)), 40)
            refused = _ssh(station, authority.operator(f"h{len(inner)}", "mdm-helpdesk",
                                                        60 + len(inner)), attack)
            assert refused.returncode == 1
            assert "refused: principal mdm-helpdesk may not run this command" in refused.stderr
        assert not (phone.path / "pwned").exists()
    finally:
        _factory_trust(station.path)


def test_the_driver_reads_trust_back_and_a_device_keeps_its_plain_key_while_it_trusts_no_ca(
        lab: Any, authority: Authority, operator_key: Path) -> None:
    import getpass

    from mdm.driver.routes import ssh_drivers
    from mdm.fleet.transport import StepFailed, Target

    device = lab.take(1)[0]
    line = " ".join((device.path / "etc" / "host_key.pub").read_text().split()[:2])
    drivers = ssh_drivers(str(operator_key))
    driver = drivers.open(Target(device.serial, device.host, device.port, getpass.getuser(),
                                 line))
    try:
        assert driver.trust().ca is None and driver.trust().plain_keys == 1
        with pytest.raises(StepFailed, match="no user CA is trusted here"):
            driver.remove_plain_keys()
        assert (device.path / "etc" / "authorized_keys").read_text().count("ssh-ed25519") == 1
        with pytest.raises(ValueError):
            driver.install_krl(b"not a revocation list", 1)
        trusted = driver.trust_ca(authority.line + " a comment", ("mdm-it", "mdm-helpdesk"))
        assert trusted.ca == " ".join(authority.line.split()[:2])
        assert trusted.principals == ("mdm-it", "mdm-helpdesk")
        authority.revoke(99)
        assert authority.krl is not None
        held = driver.install_krl(authority.krl[1], 7)
        assert held.krl_version == 7
        assert (device.path / "etc" / "revoked_keys").read_bytes() == authority.krl[1]
        assert driver.remove_plain_keys().plain_keys == 0
    finally:
        driver.close()
        drivers.close()


def test_a_rollout_with_an_expired_certificate_queues_nothing_and_touches_no_device(
        mdm: Any, enrolled: Callable[[int], list[Any]], authority: Authority,
        operator_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = enrolled(2)
    authority.install()
    admin = authority.operator("admin", "mdm-admin", 1, key=operator_key)
    _keygen("-s", str(authority.key), "-I", "mdm:admin:2", "-n", "mdm-admin", "-z", "2",
            "-V", "20200101:20200102", str(admin) + ".pub")  # over the valid one: expired
    monkeypatch.setenv("MDM_KEY", str(admin))
    refused = mdm("ca", "rollout", code=2)
    assert "expired" in refused.stderr and "mdm login" in refused.stderr
    assert mdm.json("queue", "list", "--state", "queued") == []
    for device in devices:
        assert (device.path / "etc" / "trusted_user_ca_keys").read_text() == ""


def _form(command: str, seconds: int = 31) -> str:
    """Return a command as mdm's transport sends it (under the device's own timeout)."""
    from mdm.fleet.transport import on_device

    return on_device(command, seconds)


def test_a_helpdesk_certificate_runs_only_mdm_s_own_commands_and_hand_written_ones_change_nothing(
        mdm: Any, rolled: Callable[[int], list[Any]], authority: Authority,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mdm.driver.shell import command_line
    from mdm.fleet import profiles

    device = rolled(1)[0]
    profile = profiles.load("android")
    hana = authority.operator("hana", "mdm-helpdesk", 20)
    etc = device.path / "etc"
    principals = (etc / "auth_principals").read_text()
    # A policy waiting in the DPC's inbox: whatever gets the DPC to apply it would show.
    (device.path / "mdm-dpc" / "inbox" / "policy.json").write_text('{"name": "x"}')
    events = (device.path / "log" / "events").read_text()
    pwned = device.path / "pwned"
    lock = command_line(profile, "lock", "a" * 32)
    attacks = [
        # The reviewer's two: a principals file that makes helpdesk admin, its name split
        # by quotes; the DPC told by the environment that the caller is admin.
        'echo "restrict,command=\\"\\$HOME/bin/mdm-shell --principal mdm-admin\\"'
        ' mdm-helpdesk" > etc/auth_princ""ipals',
        "env MDM_PRINCIPAL=mdm-admin $HOME/bin/dpc  apply",
        # mdm's own forms with something added: `;`, a newline, `&&`, a subshell
        _form(profile.facts["packages"]) + " ; touch pwned",
        _form(profile.facts["packages"]) + "\ntouch pwned",
        _form(lock) + " && touch pwned",
        _form(profile.facts["packages"] + " ; touch pwned"),
        # a slot filled with shell rather than its digits, or a quote broken open
        _form(command_line(profile, "lock", "$(touch pwned)")),
        _form(profile.status_command().replace("----mdm-", "----mdm-$(touch pwned)", 1)),
        _form(profile.facts["packages"]).replace("sh -c '", "sh -c ''touch pwned;'", 1),
        "timeout -k 1 $(touch pwned) sh -c 'getprop'",
        # the form without its wrapper, and a plain read mdm never sends
        profile.facts["packages"],
        "cat etc/auth_principals",
    ]
    for attack in attacks:
        refused = _ssh(device, hana, attack)
        assert refused.returncode == 1, attack
        assert "refused: principal mdm-helpdesk may not run this command" in refused.stderr
    assert (etc / "auth_principals").read_text() == principals
    assert not pwned.exists()
    assert not (device.path / "mdm-dpc" / "status.json").exists()
    assert (device.path / "log" / "events").read_text() == events
    assert _log(device).count("by mdm:hana:20 as mdm-helpdesk\trefused\t") == len(attacks)

    # mdm's own forms pass: mdm itself reads the device with hana's certificate (the
    # inventory would let her do more; the device holds her to helpdesk), the package
    # listing, a wipe carrying its id (a rollout principal may read but not wipe).
    mdm("operators", "add", "hana", "--role", "it")
    monkeypatch.setenv("MDM_KEY", str(hana))
    done = mdm.json("devices", "refresh", device.serial, operator="hana")["done"]
    assert [d["serial"] for d in done] == [device.serial]
    listed = _ssh(device, hana, _form(profile.facts["packages"], 7))
    assert listed.returncode == 0 and "package:uk.police.mdm.dpc" in listed.stdout
    rollout = authority.operator("rita", "mdm-rollout", 21)
    wipe = _form(command_line(profile, "wipe", "b" * 32))
    assert _ssh(device, rollout, wipe).returncode == 1
    assert not (device.path / "mdm-dpc" / "wiped").exists()
    wiped = _ssh(device, hana, wipe)
    assert wiped.returncode == 0 and f"mdm-command {'b' * 32} done" in wiped.stdout
    assert (device.path / "mdm-dpc" / "wiped").exists()


def test_the_dpc_takes_the_session_s_principal_from_the_shell_s_record_not_the_environment(
        lab: Any) -> None:
    device = lab.take(1)[0]
    home = device.path
    (home / "mdm-dpc" / "inbox" / "policy.json").write_text('{"name": "x"}')
    env = {"HOME": str(home), "PATH": f"{home}/bin:/usr/bin:/bin", "MDM_PRINCIPAL": "mdm-admin"}
    record = 'printf "%s\\n" "$1" > "$HOME/run/sessions/$$" && exec "$HOME/bin/dpc" apply'
    # A session leader records its principal as the device shell does, then runs the DPC.
    held = subprocess.run(["sh", "-c", record, "sh", "mdm-helpdesk"], env=env, timeout=30,
                          capture_output=True, text=True, start_new_session=True)
    assert held.returncode == 1 and "may not apply-policy" in held.stderr
    assert not (home / "mdm-dpc" / "status.json").exists()
    done = subprocess.run(["sh", "-c", record, "sh", "mdm-it"], env=env, timeout=30,
                          capture_output=True, text=True, start_new_session=True)
    assert done.returncode == 0, done.stderr
    assert (home / "mdm-dpc" / "status.json").exists()
