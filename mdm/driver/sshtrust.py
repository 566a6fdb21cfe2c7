"""Whom a device's sshd lets in: the device-side scripts for CA trust, KRL and plain keys.

A device trusts the force's user CA through three files its sshd reads on every login
(`TrustedUserCAKeys`, `AuthorizedPrincipalsFile`, `RevokedKeys`), and still accepts the
plain keys in its `authorized_keys` (the enrolment key) until they are removed. Each
operation here is one exec that writes its file under a temporary name, renames it into
place, and reads the device's trust back in the same exec, so what mdm records is what
the device holds. The paths come from the device profile (`paths:`), with the lab's
defaults for a profile that names none.

Each principal line runs the device shell with its role (`command="… --principal P"`),
so the device, not the inventory, decides what a certificate's role may do. Removing the
plain keys is refused on the device itself while it trusts no CA: a device is never left
with no way in.

Through a provisioning station the same scripts run in the phone's own shell (`adb
shell`): they set the trust of the phone's sshd, which serves its field (direct) route.
The SSH login of a station-routed session is the station's own, checked by the station's
sshd against the station's trust files.
"""

from __future__ import annotations

import re

from mdm.driver import Trust
from mdm.fleet.transport import MalformedOutput, StepFailed

PATHS = {"trusted_ca": "$HOME/etc/trusted_user_ca_keys",
         "principals": "$HOME/etc/auth_principals",
         "revoked_keys": "$HOME/etc/revoked_keys",
         "authorized_keys": "$HOME/etc/authorized_keys",
         "shell": "$HOME/bin/mdm-shell"}
PRINCIPAL = re.compile(r"[a-z][a-z0-9-]{0,63}")
CA_LINE = re.compile(r"(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|rsa-sha2-(256|512))"
                     r" [A-Za-z0-9+/]+={0,2}")
KRL_MAGIC = b"SSHKRL\n\0"
_SAFE = re.compile(r"^[A-Za-z0-9_./${}:@+-]+$")
NO_CA = 5  # the exit status of a removal the device refuses: it trusts no CA yet
_STATE_OUTPUT = 64 * 1024


def paths(profile_paths: dict[str, str]) -> dict[str, str]:
    """Return the trust paths: the profile's, else the defaults; each checked and quoted."""
    out = {}
    for key, default in PATHS.items():
        value = profile_paths.get(key, default)
        if not _SAFE.match(value):
            raise ValueError(f"unsafe device path {value!r}")
        out[key] = f'"{value}"'
    return out


def ca_key(line: str) -> str:
    """Return a CA public line as "type base64" (the comment dropped), or raise ValueError."""
    found = CA_LINE.match(line.strip())
    if not found:
        raise ValueError(f"not an SSH public key line: {line[:40]!r}")
    return found.group(0)


def principals_text(principals: tuple[str, ...], shell: str) -> str:
    """Return the authorised principals file: each principal runs the shell with its role."""
    for p in principals:
        if not PRINCIPAL.fullmatch(p):
            raise ValueError(f"bad principal {p!r}")
    return "".join(f'restrict,command="{shell} --principal {p}" {p}\n' for p in principals)


def state_script(p: dict[str, str], boundary: str) -> str:
    """Return the script that prints the device's trust, one section per file."""
    return (f"cat {p['trusted_ca']} 2>/dev/null ; echo {boundary} ;"
            f" cat {p['revoked_keys']}.version 2>/dev/null ; echo {boundary} ;"
            f" grep -c -v -e '^#' -e '^$' {p['authorized_keys']} 2>/dev/null ; echo {boundary} ;"
            f" cat {p['principals']} 2>/dev/null ; true")


def _replace(path: str, tmp_suffix: str, content: str) -> str:
    """Return shell that writes literal content to a temporary name and renames it in."""
    if "'" in content:
        raise ValueError("content with a single quote")
    tmp = path[:-1] + f'.mdm-{tmp_suffix}"'
    return (f"( umask 077 && printf '%s' '{content}' > {tmp} ) && mv -f {tmp} {path}"
            f" || {{ rm -f {tmp} ; exit 4 ; }}")


def trust_ca_script(p: dict[str, str], ca_line: str, principals: tuple[str, ...],
                    shell: str, suffix: str, boundary: str) -> str:
    """Return the one exec that installs CA trust and the principals, then reads back."""
    return "\n".join([
        f'mkdir -p "$(dirname {p["trusted_ca"]})" || exit 4',
        _replace(p["principals"], suffix, principals_text(principals, shell)),
        _replace(p["trusted_ca"], suffix, ca_key(ca_line) + "\n"),
        state_script(p, boundary),
    ])


def krl_script(p: dict[str, str], sha256: str, version: int, suffix: str,
               boundary: str) -> str:
    """Return the one exec that installs a KRL from stdin (sha256 checked), then its version."""
    path = p["revoked_keys"]
    tmp = path[:-1] + f'.mdm-{suffix}"'
    return "\n".join([
        f"( umask 077 && cat > {tmp} ) || {{ rm -f {tmp} ; exit 4 ; }}",
        f"h=$(sha256sum {tmp}) ; h=${{h%% *}}",
        f"if [ \"$h\" != {sha256} ]; then rm -f {tmp} ; echo \"$h\" >&2 ; exit 3 ; fi",
        f"chmod 0644 {tmp} && mv -f {tmp} {path} || {{ rm -f {tmp} ; exit 4 ; }}",
        _replace(path[:-1] + '.version"', suffix, f"{version}\n"),
        state_script(p, boundary),
    ])


def remove_plain_script(p: dict[str, str], suffix: str, boundary: str) -> str:
    """Return the one exec that empties authorized_keys, refused while no CA is trusted."""
    return "\n".join([
        f"grep -q '^[a-z]' {p['trusted_ca']} 2>/dev/null ||"
        f" {{ echo 'no user CA is trusted here: the plain key stays' >&2 ; exit {NO_CA} ; }}",
        _replace(p["authorized_keys"], suffix, ""),
        state_script(p, boundary),
    ])


def parse_state(text: str, boundary: str, device: str) -> Trust:
    """Parse the state script's output into what the device trusts."""
    parts = text.split(boundary + "\n")
    if len(parts) != 4:
        raise MalformedOutput(device, f"reading the SSH trust: {len(parts)}"
                                                " sections, expected 4")
    ca_text, version_text, count_text, principals_text_ = parts
    ca = None
    for line in ca_text.splitlines():
        try:
            ca = ca_key(line)
            break
        except ValueError:
            continue
    version_text = version_text.strip()
    count_text = count_text.strip()
    if (version_text and not version_text.isdigit()) or not (count_text or "0").isdigit():
        raise MalformedOutput(device, "reading the SSH trust: a version or count"
                                                " that is not a number")
    principals = tuple(line.rsplit(" ", 1)[-1] for line in principals_text_.splitlines()
                       if line.strip() and not line.startswith("#"))
    if not all(PRINCIPAL.fullmatch(x) for x in principals):
        raise MalformedOutput(device, "reading the SSH trust: a principal mdm"
                                                " cannot read")
    return Trust(ca, principals[:16], int(version_text[:18]) if version_text else None,
                 int(count_text[:9] or 0))


def refused(device: str, what: str, exit_status: int, said: str) -> StepFailed:
    """Return the error for a trust step the device refused or failed."""
    return StepFailed(device, f"{what} failed (exit {exit_status}): {said or 'no reason given'}")
