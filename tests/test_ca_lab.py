"""Certificates cross a real sshd that trusts only the force's CA (TrustedUserCAKeys)."""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import rows

PASSPHRASE = "correct horse battery"
pytestmark = [pytest.mark.lab, pytest.mark.backends]


@pytest.fixture
def ca_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """One lab device of its own (its sshd is reconfigured), stopped by PID afterwards."""
    from mdm.fleet.keys import generate_ed25519
    from mdm.lab.lab import SSHD, Lab, _alive, become_subreaper

    if not SSHD.exists():
        pytest.skip("OpenSSH sshd is not installed (bash scripts/setup.sh installs it)")
    key = tmp_path / "operator" / "id_ed25519"
    generate_ed25519(key, comment="mdm-admin")
    monkeypatch.setenv("MDM_KEY", str(key))
    monkeypatch.setenv("MDM_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("MDM_CA_PASSPHRASE", PASSPHRASE)
    become_subreaper()
    lab = Lab(tmp_path / "lab")
    monkeypatch.setenv("MDM_LAB", str(lab.root))
    lab.up(1, Path(str(key) + ".pub").read_text())
    lab.key = key
    try:
        yield lab
    finally:
        pids = lab.pids()
        lab.down()
        assert not [p for p in pids if _alive(p)], "the device's sshd outlived lab down"


def trust_only_the_ca(lab: Any, ca_line: str, principals: list[str]) -> None:
    """Make the device's sshd trust the CA for these principals, and no plain key."""
    device = lab.devices()[0]
    etc = device.path / "etc"
    (etc / "trusted_user_ca_keys").write_text(ca_line + "\n")
    (etc / "auth_principals").write_text("".join(f"{p}\n" for p in principals))
    (etc / "authorized_keys").write_text("")
    config = (etc / "sshd_config").read_text()
    for line in (f"TrustedUserCAKeys {etc}/trusted_user_ca_keys",
                 f"AuthorizedPrincipalsFile {etc}/auth_principals"):
        if line.split()[0] not in config:
            config = config.replace("\nForceCommand", f"\n{line}\nForceCommand")
    (etc / "sshd_config").write_text(config)
    lab._stop(device)
    lab._start(device)


def enrol(mdm: Any, lab: Any, files: Any) -> Any:
    from mdm import examples
    from mdm.fleet.keys import fingerprint_of_line

    device = lab.devices()[0]
    mdm("operators", "add", "admin")
    mdm("enrol", "import", files("manifest.csv", lab.manifest(), examples.MANIFEST_COLUMNS))
    fp = fingerprint_of_line((device.path / "etc" / "host_key.pub").read_text())
    mdm("enrol", "devices", "--from", files("plan.csv", "serial_number,address,host_key\n"
                                            f"{device.serial},{device.address},{fp}\n"))
    return device


def test_login_reaches_a_device_that_trusts_only_the_ca(mdm, ca_lab, files, db_path) -> None:
    from mdm.fleet.ssh import ParamikoTransport, load_credentials
    from mdm.fleet.transport import AuthFailed, Credentials, Target

    device = enrol(mdm, ca_lab, files)  # with the plain key, before there is a CA
    ca_line = mdm.json("ca", "init")["public_line"]
    trust_only_the_ca(ca_lab, ca_line, ["mdm-admin"])
    # a CA in the inventory and no certificate: refused before any device is touched
    refused = mdm("devices", "refresh", code=2)
    assert "no certificate" in refused.stderr and "mdm login" in refused.stderr
    seen_before = rows(db_path, "SELECT last_seen FROM devices")
    login = mdm.json("login", "--valid-for", "1h")
    out = mdm.json("devices", "refresh")
    assert [d["serial"] for d in out["done"]] == [device.serial]
    assert rows(db_path, "SELECT last_seen FROM devices") != seen_before
    # the device's own sshd saw the certificate: its key id names the operator and serial
    credentials = load_credentials(str(ca_lab.key))
    assert credentials.pkey.public_blob is not None and credentials.plain is not None
    host_key = (device.path / "etc" / "host_key.pub").read_text().strip()
    target = Target(device.serial, device.host, device.port,
                    user=getpass.getuser(), host_key=host_key)
    with ParamikoTransport(target, credentials) as transport:
        assert transport.run("echo ok").text.strip() == "ok"
    # the plain key without its certificate is refused by the device
    with pytest.raises(AuthFailed):
        ParamikoTransport(target, Credentials(pkey=credentials.plain))
    assert login["key_id"] == f"mdm:admin:{login['serial']}"


def test_an_expired_certificate_is_refused_before_any_device(mdm, ca_lab, files,
                                                             db_path, tmp_path) -> None:
    device = enrol(mdm, ca_lab, files)
    mdm("ca", "init")
    mdm("login")
    # the CA's own key, decrypted into a scratch copy, signs a certificate that has expired
    scratch = tmp_path / "scratch-ca"
    scratch.write_bytes((tmp_path / "ca" / "ca").read_bytes())
    scratch.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", PASSPHRASE, "-N", "", "-f", str(scratch)],
                   check=True, timeout=30, capture_output=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(scratch), "-I", "mdm:admin:1",
                    "-n", "mdm-admin", "-z", "1", "-V", "20200101:20200102",
                    str(ca_lab.key) + ".pub"], check=True, timeout=30, capture_output=True)
    seen = rows(db_path, "SELECT last_seen FROM devices WHERE serial = ?", (device.serial,))
    refused = mdm("devices", "refresh", code=2)
    assert "expired at 2020-01-02" in refused.stderr and "mdm login" in refused.stderr
    assert rows(db_path, "SELECT last_seen FROM devices WHERE serial = ?",
                (device.serial,)) == seen
    # not yet valid: also refused locally
    subprocess.run(["ssh-keygen", "-q", "-s", str(scratch), "-I", "mdm:admin:1",
                    "-n", "mdm-admin", "-z", "1", "-V", "+1d:+2d",
                    str(ca_lab.key) + ".pub"], check=True, timeout=30, capture_output=True)
    assert "is not valid until" in mdm("devices", "refresh", code=2).stderr


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ssh-agent on a socket in tmp_path (foreground, stopped by its PID)."""
    import time

    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sock.exists(), "ssh-agent did not start"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def decrypted_copy(encrypted: Path, passphrase: str, into: Path) -> Path:
    into.write_bytes(encrypted.read_bytes())
    into.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", passphrase, "-N", "", "-f", str(into)],
                   check=True, timeout=30, capture_output=True)
    return into


def test_signing_and_presenting_through_ssh_agent(mdm, ca_lab, files, db_path, agent,
                                                 tmp_path, monkeypatch) -> None:
    """The CA key in the agent signs (no key file, no passphrase); an agent-held operator
    key presents its certificate to a device that trusts only the CA."""
    device = enrol(mdm, ca_lab, files)
    ca_line = mdm.json("ca", "init")["public_line"]
    trust_only_the_ca(ca_lab, ca_line, ["mdm-admin"])
    ca_dir = tmp_path / "ca"
    subprocess.run(["ssh-add", "-q", str(decrypted_copy(ca_dir / "ca", PASSPHRASE,
                                                        tmp_path / "ca-plain"))],
                   check=True, timeout=30, capture_output=True)
    (ca_dir / "ca").rename(tmp_path / "ca-away")  # the key file is not there to read
    monkeypatch.delenv("MDM_CA_PASSPHRASE")
    assert mdm.json("ca", "show")["in_agent"] is True
    out = mdm.json("login", "--valid-for", "1h")
    assert out["signed_with"] == "ssh-agent"
    listed = subprocess.run(["ssh-keygen", "-L", "-f", out["path"]], capture_output=True,
                            text=True, check=True, timeout=30).stdout
    assert f'Key ID: "mdm:admin:{out["serial"]}"' in listed
    assert listed.split("Extensions:")[1].split() == ["permit-pty"]
    assert listed.split("Principals:")[1].split("Critical")[0].split() == ["mdm-admin"]
    # the operator's key: encrypted on disk, held by the agent, so mdm signs through it
    subprocess.run(["ssh-add", "-q", str(ca_lab.key)], check=True, timeout=30,
                   capture_output=True)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "op-passphrase", "-f",
                    str(ca_lab.key)], check=True, timeout=30, capture_output=True)
    monkeypatch.delenv("MDM_KEY_PASSPHRASE", raising=False)
    refreshed = mdm.json("devices", "refresh")
    assert [d["serial"] for d in refreshed["done"]] == [device.serial]
    assert rows(db_path, "SELECT COUNT(*) FROM audit WHERE action = 'ca.login'") == [(1,)]
