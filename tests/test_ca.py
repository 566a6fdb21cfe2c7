"""The force's SSH CA on the operator side: the key, certificates, revocation lists."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mdm.cli import app
from tests.helpers import db_fingerprint, rows

pytestmark = pytest.mark.backends

PASSPHRASE = "correct horse battery"


@pytest.fixture
def ca(mdm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An inventory with an admin, an operator key each for admin and helpdesk, and a CA."""
    from mdm.fleet.keys import generate_ed25519

    monkeypatch.setenv("MDM_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("MDM_CA_PASSPHRASE", PASSPHRASE)
    keys = {}
    for name in ("admin", "hd"):
        keys[name] = tmp_path / "keys" / name / "id_ed25519"
        generate_ed25519(keys[name], comment=f"mdm-{name}")
    monkeypatch.setenv("MDM_KEY", str(keys["admin"]))
    mdm("operators", "add", "admin")
    mdm("operators", "add", "hd", "--role", "helpdesk")
    mdm("ca", "init")
    return {"dir": tmp_path / "ca", **keys}


def keygen_list(cert: Path) -> str:
    return subprocess.run(["ssh-keygen", "-L", "-f", str(cert)], capture_output=True,
                          text=True, check=True, timeout=30).stdout


def login(mdm: Any, key: Path, operator: str, *more: str, code: int = 0) -> Any:
    return mdm.json("--key", str(key), "login", *more, operator=operator, code=code)


def test_ca_init_records_the_public_line_once_and_keeps_the_key_outside(mdm, ca, db_path,
                                                                        tmp_path) -> None:
    shown = mdm.json("ca", "show")
    public = (ca["dir"] / "ca.pub").read_text().strip()
    assert shown["public_line"] == public and shown["key_here"] is True
    assert rows(db_path, "SELECT public_line FROM ca") == [(public,)]
    assert mdm("ca", "show").stdout == public + "\n"  # ready for TrustedUserCAKeys
    assert (ca["dir"].stat().st_mode & 0o777, (ca["dir"] / "ca").stat().st_mode & 0o777) \
        == (0o700, 0o600)
    # passphrase-protected in OpenSSH's own format: ssh-keygen cannot read it without one
    refused = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", str(ca["dir"] / "ca")],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    opened = subprocess.run(["ssh-keygen", "-y", "-P", PASSPHRASE, "-f", str(ca["dir"] / "ca")],
                            capture_output=True, text=True, timeout=30, check=True)
    assert opened.stdout.split()[:2] == public.split()[:2]
    log = mdm.json("audit", "log", "--action", "ca.init")
    assert len(log) == 1 and log[0]["after"]["public_line"] == public
    # the private key is in no inventory row, no output, no audit row
    secret = [line for line in (ca["dir"] / "ca").read_text().splitlines()
              if "PRIVATE KEY" not in line]
    if isinstance(db_path, str):  # every row of every table, as text
        tables = [r[0] for r in rows(db_path, "SELECT table_name FROM information_schema.tables"
                                              " WHERE table_schema = current_schema()")]
        blob = "".join(str(r[0]) for t in tables
                       for r in rows(db_path, f'SELECT t::text FROM "{t}" AS t')).encode()
    else:
        db_fingerprint(db_path)  # fold the WAL into the file
        blob = db_path.read_bytes()
    assert not any(line.encode() in blob for line in secret)
    # a second CA for the same inventory is refused, and so is a new key over an old one
    again = mdm("ca", "init", "--json", code=2)
    assert "already has a CA" in again.stderr
    assert rows(db_path, "SELECT COUNT(*) FROM ca") == [(1,)]


def test_ca_init_needs_an_admin_and_refuses_a_short_passphrase(mdm, tmp_path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("MDM_CA_DIR", str(tmp_path / "ca"))
    mdm("operators", "add", "admin")
    mdm("operators", "add", "it1", "--role", "it")
    monkeypatch.setenv("MDM_CA_PASSPHRASE", PASSPHRASE)
    assert "ca.manage needs the admin role" in mdm("ca", "init", operator="it1", code=2).stderr
    monkeypatch.setenv("MDM_CA_PASSPHRASE", "short")
    assert "shorter than 8" in mdm("ca", "init", code=2).stderr
    assert not (tmp_path / "ca" / "ca").exists()
    monkeypatch.delenv("MDM_CA_PASSPHRASE")
    # asked for at a prompt (twice), never taken from the command line
    result = CliRunner().invoke(app, ["ca", "init"], input=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.output
    assert PASSPHRASE not in result.stdout


def test_login_signs_one_shift_for_the_operators_role(mdm, ca, db_path) -> None:
    before = int(time.time())
    out = login(mdm, ca["hd"], "hd")
    cert = Path(str(ca["hd"]) + "-cert.pub")
    assert out["path"] == str(cert)
    listed = keygen_list(cert)
    assert f'Key ID: "mdm:hd:{out["serial"]}"' in listed
    assert f"Serial: {out['serial']}" in listed
    principals = listed.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["mdm-helpdesk"]
    assert "Critical Options: (none)" in listed
    extensions = listed.split("Extensions:")[1].split()
    assert extensions == ["permit-pty"]  # no agent, port or X11 forwarding, no user rc
    from mdm.ca.check import read

    parsed = read(cert)
    assert before - 120 <= parsed.valid_after <= before
    assert parsed.valid_before - parsed.valid_after == 8 * 3600 + 60  # one shift (+ skew)
    ca_fp = subprocess.run(["ssh-keygen", "-l", "-f", str(ca["dir"] / "ca.pub")],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fp}" in listed
    # admin's certificate: the next serial, the admin principal
    second = login(mdm, ca["admin"], "admin", "--valid-for", "2h")
    assert second["serial"] > out["serial"] and second["principals"] == ["mdm-admin"]
    assert rows(db_path, "SELECT serial, operator, principals FROM certificates ORDER BY"
                         " serial") == [(out["serial"], "hd", "mdm-helpdesk"),
                                        (second["serial"], "admin", "mdm-admin")]
    log = mdm.json("audit", "log", "--action", "ca.login")
    assert [(r["operator"], r["after"]["serial"], r["after"]["principals"]) for r in log] == \
        [("hd", out["serial"], "mdm-helpdesk"), ("admin", second["serial"], "mdm-admin")]
    assert log[0]["after"]["valid_before"] == out["valid_before"]


def test_login_is_refused_past_the_maximum_and_to_operators_without_a_role(
        mdm, ca, db_path, tmp_path) -> None:
    too_long = mdm("--key", str(ca["hd"]), "login", "--valid-for", "13h", operator="hd",
                   code=2)
    assert "ca.max_validity" in too_long.stderr
    (tmp_path / "mdm.toml").write_text((tmp_path / "mdm.toml").read_text()
                                       + '\n[ca]\nmax_validity = "1h"\n')
    assert "ca.max_validity" in mdm("--key", str(ca["hd"]), "login", "--valid-for", "2h",
                                    operator="hd", code=2).stderr
    refused = mdm("--key", str(ca["hd"]), "login", operator="stranger", code=2)
    assert "not registered with a role" in refused.stderr
    mdm("operators", "remove", "hd", "--reason", "left the IT team")
    assert "was removed" in mdm("--key", str(ca["hd"]), "login", "--valid-for", "1h",
                                operator="hd", code=2).stderr
    assert rows(db_path, "SELECT COUNT(*) FROM certificates") == [(0,)]
    assert not Path(str(ca["hd"]) + "-cert.pub").exists()


def test_a_wrong_ca_passphrase_signs_nothing(mdm, ca, db_path, monkeypatch) -> None:
    before = db_fingerprint(db_path)
    monkeypatch.setenv("MDM_CA_PASSPHRASE", "not the passphrase")
    failed = mdm("--key", str(ca["hd"]), "login", operator="hd", code=2)
    assert "wrong passphrase for the CA key" in failed.stderr
    assert "MDM_CA_PASSPHRASE" in failed.stderr
    assert db_fingerprint(db_path) == before
    assert not Path(str(ca["hd"]) + "-cert.pub").exists()


def test_revoking_puts_every_serial_in_a_new_krl_version(mdm, ca, db_path, tmp_path) -> None:
    from mdm.ca import krl
    from mdm.store import connect

    first = login(mdm, ca["hd"], "hd")["serial"]
    shift_one = tmp_path / "shift-one-cert.pub"
    shift_one.write_bytes(Path(str(ca["hd"]) + "-cert.pub").read_bytes())
    second = login(mdm, ca["hd"], "hd")["serial"]
    kept = login(mdm, ca["admin"], "admin")["serial"]
    assert "needs the admin role" in mdm("ca", "revoke", "admin", "--reason", "x",
                                         operator="hd", code=2).stderr
    out = mdm.json("ca", "revoke", "hd", "--reason", "left the IT team")
    assert out["revoked"] == [first, second] and out["krl_version"] == 2
    db = connect(db_path, create=False)
    version, data = krl.current(db)  # type: ignore[misc]
    assert version == 2
    file = tmp_path / "krl"
    file.write_bytes(data)

    def query(cert: Path) -> int:
        return subprocess.run(["ssh-keygen", "-Q", "-f", str(file), str(cert)],
                              capture_output=True, timeout=30).returncode

    assert query(Path(str(ca["hd"]) + "-cert.pub")) == 1  # revoked
    assert query(shift_one) == 1
    assert query(Path(str(ca["admin"]) + "-cert.pub")) == 0
    listed = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", str(file)], capture_output=True,
                            text=True, timeout=30, check=True).stdout
    assert f"serial: {first}-{second}\n" in listed  # ssh-keygen shows a run as a range
    assert str(kept) not in listed.split("CA key")[1].split()[2:]
    # by serial; each version is kept
    assert mdm.json("ca", "revoke", str(kept), "--reason", "lost laptop")["krl_version"] == 3
    assert [r[0] for r in rows(db_path, "SELECT version FROM krls ORDER BY version")] \
        == [1, 2, 3]
    log = mdm.json("audit", "log", "--action", "ca.revoke")
    assert [(r["subject"], r["after"]["serials"]) for r in log] == \
        [("operator:hd", [first, second]), (f"certificate:{kept}", [kept])]
    assert "already revoked" in mdm("ca", "revoke", "hd", "--reason", "again", code=2).stderr
    db.conn.close()


def test_the_local_check_refuses_expired_foreign_and_missing_certificates(
        mdm, ca, db_path, tmp_path) -> None:
    from mdm.ca.check import require_certificate
    from mdm.errors import InputError
    from mdm.store import connect

    db = connect(db_path, create=False)
    key = str(ca["admin"])
    with pytest.raises(InputError, match="no certificate") as missing:
        require_certificate(db, key, "admin")
    assert missing.value.hint == "run: mdm login"
    out = login(mdm, ca["admin"], "admin", "--valid-for", "1h")
    assert require_certificate(db, key, "admin")["serial"] == out["serial"]
    now = time.time()
    with pytest.raises(InputError, match="expired at") as expired:
        require_certificate(db, key, "admin", at=now + 3601)
    assert "mdm login" in expired.value.hint
    with pytest.raises(InputError, match="not valid until"):
        require_certificate(db, key, "admin", at=now - 600)
    with pytest.raises(InputError, match="issued to 'admin'"):
        require_certificate(db, key, "hd")
    # a certificate from another CA
    other = tmp_path / "other-ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True, timeout=30)
    subprocess.run(["ssh-keygen", "-q", "-s", str(other), "-I", "mdm:admin:99",
                    "-n", "mdm-admin", "-V", "-5m:+1h", key + ".pub"], check=True, timeout=30)
    with pytest.raises(InputError, match="signed by another CA"):
        require_certificate(db, key, "admin")
    db.conn.close()


def test_removing_an_operator_is_audited_and_keeps_the_last_admin(mdm, ca, db_path) -> None:
    login(mdm, ca["hd"], "hd")
    assert "needs the admin role" in mdm("operators", "remove", "admin", "--reason", "x",
                                         operator="hd", code=2).stderr
    assert "last admin" in mdm("operators", "remove", "admin", "--reason", "x",
                               code=2).stderr
    assert "no operator 'ghost'" in mdm("operators", "remove", "ghost", "--reason", "x",
                                        code=2).stderr
    out = mdm.json("operators", "remove", "hd", "--reason", "left the IT team")
    assert out["unexpired_certificates"] == [1]  # still valid until revoked or expired
    assert rows(db_path, "SELECT active FROM operators WHERE name = 'hd'") == [(0,)]
    log = mdm.json("audit", "log", "--action", "operators.remove")
    assert [(r["subject"], r["after"]["reason"]) for r in log] == \
        [("operator:hd", "left the IT team")]
    assert "already removed" in mdm("operators", "remove", "hd", "--reason", "x",
                                    code=2).stderr
    # a removed operator can run nothing either, and their certificate can still be revoked
    assert "not registered" in mdm("operators", "add", "x1", operator="hd", code=2).stderr
    assert mdm.json("ca", "revoke", "hd", "--reason", "left the IT team")["revoked"] == [1]


def test_without_a_ca_login_and_revoke_say_how_to_start(mdm, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MDM_CA_DIR", str(tmp_path / "ca"))
    mdm("operators", "add", "admin")
    for args in (("login",), ("ca", "show"), ("ca", "revoke", "admin", "--reason", "x")):
        assert "mdm ca init" in mdm(*args, code=2).stderr


def test_the_local_check_refuses_an_edited_certificate_and_one_for_another_key(
        mdm, ca, db_path) -> None:
    import base64

    from mdm.ca.check import require_certificate
    from mdm.errors import InputError
    from mdm.store import connect

    db = connect(db_path, create=False)
    login(mdm, ca["admin"], "admin")
    cert = Path(str(ca["admin"]) + "-cert.pub")
    signed = cert.read_text()
    kind, blob, comment = signed.split(None, 2)
    edited = bytearray(base64.b64decode(blob))
    edited[-5] ^= 1  # a byte of the CA's signature
    cert.write_text(f"{kind} {base64.b64encode(bytes(edited)).decode()} {comment}")
    with pytest.raises(InputError, match="changed after signing") as changed:
        require_certificate(db, str(ca["admin"]), "admin")
    assert changed.value.hint == "run: mdm login"
    # the admin's own, genuine certificate copied beside the helpdesk operator's key
    Path(str(ca["hd"]) + "-cert.pub").write_text(signed)
    with pytest.raises(InputError, match="is for another key"):
        require_certificate(db, str(ca["hd"]), "admin")
    db.conn.close()


def test_revoking_a_serial_too_large_or_in_other_digits_is_refused_by_name(
        mdm, ca, db_path) -> None:
    login(mdm, ca["admin"], "admin")
    before = db_fingerprint(db_path)
    for target in ("99999999999999999999999", "9223372036854775808"):
        refused = mdm("ca", "revoke", target, "--reason", "x", code=2)
        assert f"no certificate with serial {target}" in refused.stderr
    assert "no operator '²'" in mdm("ca", "revoke", "²", "--reason", "x", code=2).stderr
    assert db_fingerprint(db_path) == before


def test_an_all_digit_operator_is_revoked_by_name_or_by_an_explicit_form(
        mdm, ca, db_path, tmp_path) -> None:
    from mdm.fleet.keys import generate_ed25519

    key = tmp_path / "keys" / "1" / "id_ed25519"
    generate_ed25519(key, comment="mdm-1")
    mdm("operators", "add", "1", "--role", "helpdesk")
    mdm("operators", "add", "7", "--role", "helpdesk")
    assert login(mdm, ca["admin"], "admin")["serial"] == 1
    assert login(mdm, key, "1")["serial"] == 2
    before = db_fingerprint(db_path)
    # "1" names both the operator 1 and the admin's certificate 1: refused, changes nothing
    refused = mdm("ca", "revoke", "1", "--reason", "x", code=2).stderr
    assert "both an operator and a certificate's serial" in refused
    assert "operator:1 or serial:1" in refused
    assert "not a number" in mdm("ca", "revoke", "serial:one", "--reason", "x",
                                 code=2).stderr
    assert db_fingerprint(db_path) == before
    assert mdm.json("ca", "revoke", "operator:1", "--reason", "left")["revoked"] == [2]
    assert mdm.json("ca", "revoke", "serial:1", "--reason", "lost")["revoked"] == [1]
    # "7" is an operator and no serial: read as the operator
    assert "'7' has no certificates" in mdm("ca", "revoke", "7", "--reason", "x",
                                            code=2).stderr
    log = mdm.json("audit", "log", "--action", "ca.revoke")
    assert [r["subject"] for r in log] == ["operator:1", "certificate:1"]


@pytest.mark.backends("sqlite")  # its `backend` fixture picks the inventory's backend itself
def test_login_numbers_certificates_on_either_backend(
        mdm, backend, tmp_path, monkeypatch) -> None:
    from mdm.fleet.keys import generate_ed25519

    monkeypatch.setenv("MDM_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("MDM_CA_PASSPHRASE", PASSPHRASE)
    key = tmp_path / "keys" / "id_ed25519"
    generate_ed25519(key, comment="mdm-admin")
    mdm("operators", "add", "admin")
    mdm("ca", "init")
    serials = [login(mdm, key, "admin")["serial"] for _ in range(2)]
    assert serials == [1, 2]
    assert "serial: 2" in keygen_list(Path(str(key) + "-cert.pub")).lower()
    listed = mdm.json("ca", "certificates")
    assert [c["serial"] for c in listed] == [2, 1]
    revoked = mdm.json("ca", "revoke", "1", "--reason", "laptop stolen")
    assert (revoked["revoked"], revoked["krl_version"]) == ([1], 2)


def test_a_validity_out_of_range_is_named_as_typed_with_the_way_to_fix_it(
        mdm, ca, db_path, tmp_path) -> None:
    (tmp_path / "mdm.toml").write_text((tmp_path / "mdm.toml").read_text()
                                       + '\n[ca]\nmax_validity = "90m"\n')
    too_long = mdm("--key", str(ca["hd"]), "login", "--valid-for", "2h", operator="hd",
                   code=2)
    assert "at most 90m (ca.max_validity), not 2h" in too_long.stderr
    assert "shorter --valid-for" in too_long.stderr
    too_short = mdm("--key", str(ca["hd"]), "login", "--valid-for", "0", operator="hd",
                    code=2)
    assert "at least 1m, not 0s" in too_short.stderr
    assert "longer --valid-for" in too_short.stderr
    assert rows(db_path, "SELECT COUNT(*) FROM certificates") == [(0,)]
