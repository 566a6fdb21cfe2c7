"""The shell-speaking driver: the device profile's commands over any Transport.

A policy push is one exec per device: one device-side script, rendered from the
profile, reads the DPC's status, uploads the policy from stdin to a temporary name,
checks its sha256 on the device, renames it into the inbox, broadcasts the apply action
and reads the status back. Every section it prints is split on the profile's per-run
boundary and parsed against the same schema and caps as before; success is only what
the DPC reports (the sha256 of the policy it applied).

One thing a shell script cannot do is parse the DPC status as strictly as mdm does, and
a device whose status breaks the schema must be refused before anything is written to
it. So the script writes only past a conservative gate (plain ASCII, one JSON object, no
list where a string belongs); a status the gate doubts is held, mdm parses it, and only a
status mdm accepts gets a second exec that writes. A sound DPC never hits the slow path.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from mdm.driver import (
    Applied,
    Build,
    Delivered,
    Installed,
    InstallFailed,
    PolicyNotApplied,
    Seen,
    Trust,
)
from mdm.fleet import deviceout
from mdm.fleet.deviceout import STATUS_OUTPUT, StatusReading
from mdm.fleet.profiles import Profile
from mdm.fleet.transport import (
    CommandResult,
    CommandTimeout,
    MalformedOutput,
    OutputTooLarge,
    StepFailed,
    Target,
    TransferCorrupt,
    Transport,
    checked_upload,
)

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./${}:@+-]+$")
_SHA = re.compile(r"[0-9a-f]{64}")
COMMAND_ID = re.compile(r"[0-9a-f]{32}")
# The extra that carries a queued command's id to the DPC, and the line it answers with.
COMMAND_EXTRA = "uk.police.mdm.extra.COMMAND_ID"
_ANSWER = re.compile(r"^mdm-command (?P<id>[0-9a-f]{32}) (?P<how>done|already-done)$",
                     re.MULTILINE)
ANSWER_OUTPUT = 64 * 1024
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_PM_CODE = re.compile(r"\b(INSTALL_[A-Z_]+)\b")
# Exit statuses of the push script for the steps that stop it.
_CORRUPT, _UPLOAD = 3, 4


def _quote(path: str) -> str:
    """Double-quote a profile path, keeping $HOME-style expansion but nothing else."""
    if not _SAFE_PATH.match(path):
        raise ValueError(f"unsafe device path {path!r}")
    return f'"{path}"'


class ShellDriver:
    """One device behind a transport, spoken to in its profile's shell commands."""

    def __init__(self, transport: Transport, profile: Profile) -> None:
        self.transport = transport
        self.profile = profile
        self.target: Target = transport.target

    @property
    def _name(self) -> str:
        return self.target.name

    def _checked(self, command: str, what: str, max_output: int | None = None,
                 stdin: bytes | None = None) -> str:
        """Run a command that must succeed; return its output, which must be UTF-8."""
        try:
            result = self.transport.run(command, stdin=stdin, max_output=max_output)
        except OutputTooLarge as exc:
            raise OutputTooLarge(exc.target, f"{what}: {exc.message}") from None
        except CommandTimeout as exc:
            raise _timed_out(exc, what) from None
        if not result.ok:
            raise StepFailed(self._name, f"{what} failed (exit {result.exit_status}):"
                             f" {_words(result.stderr)}")
        return deviceout.decode(result.stdout, what, self._name)

    def identity(self) -> Seen:
        """Return the session's host-key fingerprint and the device's facts."""
        return Seen(self.transport.host_key(), self.facts())

    def facts(self) -> dict[str, Any]:
        """Return the device's facts, in one round trip."""
        output = self._checked(self.profile.facts_command(), "reading facts")
        return self.profile.parse_facts(output, self._name)

    def policy_status(self) -> StatusReading:
        """Return the DPC's status and the policy file's sha256, in one round trip."""
        output = self._checked(self.profile.status_command(), "reading the DPC status",
                               STATUS_OUTPUT)
        return self.profile.parse_status(output, self._name)

    def installed_packages(self) -> dict[str, int]:
        """Return package name → versionCode, as the profile's package listing says."""
        output = self._checked(self.profile.facts["packages"], "listing packages")
        return deviceout.parse_packages(output, self._name)

    def install(self, build: Build, downgrade: bool = False) -> Installed:
        """Install a build: one exec to list packages, one to upload, check, install, confirm.

        A device already on the build is not written to. The upload goes to the profile's
        staging folder under a temporary name, is checked by sha256 on the device, renamed,
        installed with `pm install -r` (`-d` only for a downgrade), removed, and the
        package list is read back in the same exec: success is only what it shows.
        """
        if not _SHA.fullmatch(build.sha256) or not _PACKAGE.fullmatch(build.package):
            raise ValueError(f"bad build {build.package!r} {build.sha256!r}")
        before = self.installed_packages().get(build.package)
        if before == build.version_code:
            return Installed(False, before, {})
        script = self._install_script(build, downgrade and (before or 0) > build.version_code)
        # Time to send the file at a slow 256 KiB/s, on top of the usual command deadline.
        with build.path.open("rb") as stream:
            try:
                result = self.transport.run(script, timeout=60 + build.size / (256 << 10),
                                            stdin=stream, max_output=STATUS_OUTPUT)
            except OutputTooLarge as exc:
                raise OutputTooLarge(exc.target, f"installing: {exc.message}") from None
        staging = self.profile.paths["staging"]
        if result.exit_status in (_CORRUPT, _UPLOAD):
            checked_upload(self._name, staging, build.sha256, CommandResult(
                result.command, 3 if result.exit_status == _CORRUPT else 1, result.stdout,
                result.stderr, result.seconds), _words(result.stderr))
        if not result.ok:
            raise StepFailed(self._name, f"installing failed (exit {result.exit_status}):"
                             f" {_words(result.stderr)}")
        text = deviceout.decode(result.stdout, "installing", self._name)
        said, mark, listing = text.partition(self.profile.boundary + "\n")
        if not mark:
            raise MalformedOutput(self._name, "installing: the device's answer has no"
                                              " package list")
        packages = deviceout.parse_packages(listing, self._name)
        words = said.strip()
        status = words.rsplit("\n", 1)[-1]
        words = words.rpartition("\n")[0].strip()
        now = packages.get(build.package)
        if status != "pm 0" or "Success" not in words:
            code = _PM_CODE.search(words)
            raise InstallFailed(self._name, f"{build.package} {build.version_code} refused:"
                                f" {_printable(words) or 'no reason given'}"
                                f" (it runs {now if now is not None else 'no version'})",
                                code[1] if code else None)
        if now != build.version_code:
            raise InstallFailed(self._name, f"{build.package}: pm said Success but the device"
                                f" lists {now}, not {build.version_code}")
        return Installed(True, before, packages)

    def _install_script(self, build: Build, downgrade: bool) -> str:
        """Render the one device-side script of an install from the profile."""
        p = self.profile
        folder = p.paths["staging"]
        final = _quote(f"{folder}/{build.sha256}.apk")
        tmp = _quote(f"{folder}/{build.sha256}.apk.mdm-{uuid.uuid4().hex[:12]}")
        install = p.actions.get("install_app", "pm install -r") + (" -d" if downgrade else "")
        return "\n".join([
            f"mkdir -p {_quote(folder)} || exit {_UPLOAD}",
            f"( umask 077 && cat > {tmp} ) || {{ rm -f {tmp} ; exit {_UPLOAD} ; }}",
            f"h=$(sha256sum {tmp}) ; h=${{h%% *}}",
            f"if [ \"$h\" != {build.sha256} ]; then rm -f {tmp} ; echo \"$h\" ;"
            f" exit {_CORRUPT} ; fi",
            f"mv -f {tmp} {final} || {{ rm -f {tmp} ; exit {_UPLOAD} ; }}",
            # pm's own words (cut short) and its exit status, on the last line.
            f"out=$({install} {final} 2>&1) ; rc=$? ;"
            f" printf '%s\\n' \"$out\" | head -c 4096 ; echo ; echo \"pm $rc\"",
            f"rm -f {final}",
            f"echo {p.boundary}",
            p.facts["packages"],
        ])

    def apply_policy(self, document: bytes, sha256: str) -> Applied:
        """Push a policy in one exec (two when the gate holds a doubtful status)."""
        if not _SHA.fullmatch(sha256):
            raise ValueError(f"{sha256!r} is not a sha256")
        before, verdict, after, stderr = self._push(document, sha256, fast=True)
        if after is None:  # held or unchanged: nothing was written
            if _runs(before, sha256):
                return Applied(False, before.dpc or {}, before.policy_file, before.truncated)
            # The status is sound by mdm's own parse (that raised otherwise): now write.
            before, verdict, after, stderr = self._push(document, sha256, fast=False)
            if after is None:
                raise MalformedOutput(self._name, "pushing the policy: the"
                                                f" device answered {verdict[:20]!r}")
        status = after.dpc or {}
        reported = status.get("policySha256")
        if reported != sha256 or status.get("state") != "APPLIED":
            code = verdict.split()[-1]
            raise PolicyNotApplied(self._name, f"the DPC reports {str(reported)[:12]}"
                                   f" ({status.get('state')}), expected {sha256[:12]};"
                                   f" apply exit {code}" + (f": {stderr}" if stderr else ""))
        return Applied(True, status, after.policy_file, after.truncated)

    def _push(self, document: bytes, sha256: str, fast: bool
              ) -> tuple[StatusReading, str, StatusReading | None, str]:
        """Run the push script; return status before, verdict, status after, apply's words."""
        script = self._push_script(sha256, fast)
        try:
            result = self.transport.run(script, stdin=document, max_output=2 * STATUS_OUTPUT)
        except OutputTooLarge as exc:
            raise OutputTooLarge(exc.target, f"pushing the policy: {exc.message}") from None
        except CommandTimeout as exc:
            raise _timed_out(exc, "pushing the policy") from None
        inbox = self.profile.paths["dpc_inbox"]
        if result.exit_status == _CORRUPT:
            seen = result.stderr.decode(errors="replace").strip()
            raise TransferCorrupt(self._name, f"upload to {inbox} arrived with sha256"
                                  f" {seen[:16]}…, sent {sha256[:16]}…; discarded")
        if result.exit_status == _UPLOAD:
            raise StepFailed(self._name, f"upload to {inbox} failed: {_words(result.stderr)}")
        if not result.ok:
            raise StepFailed(self._name, f"pushing the policy failed (exit"
                             f" {result.exit_status}): {_words(result.stderr)}")
        text = deviceout.decode(result.stdout, "pushing the policy", self._name)
        mark = self.profile.boundary + "\n"
        parts = text.split(mark)
        before = self.profile.parse_status(mark.join(parts[:2]), self._name)
        verdict = parts[2].strip() if len(parts) > 2 else ""
        if verdict in ("held", "unchanged") and len(parts) == 3:
            return before, verdict, None, ""
        if not verdict.startswith("applied ") or len(parts) != 5:
            raise MalformedOutput(self._name, "pushing the policy: the device's"
                                            f" answer has {len(parts)} sections, expected 5")
        after = self.profile.parse_status(mark.join(parts[3:]), self._name)
        return before, verdict, after, _words(result.stderr)

    def _push_script(self, sha256: str, fast: bool) -> str:
        """Render the one device-side script of a policy push from the profile."""
        p = self.profile
        mark = p.boundary
        inbox = _quote(p.paths["dpc_inbox"])
        status = _quote(p.paths["dpc_status"])
        tmp = _quote(f"{p.paths['dpc_inbox']}.mdm-{uuid.uuid4().hex[:12]}")
        lines = [f"{p.status_command()} ; echo {mark}"]
        if fast:
            flat = f"tr -d ' \\011\\012\\015' < {status} 2>/dev/null"
            lines += [
                # The gate: a status file that is absent, or plain ASCII holding one JSON
                # object with no list where a string belongs. Anything else is held.
                f"if [ -e {status} ]; then"
                f" [ $(tr -d '\\011\\012\\015\\040-\\176' < {status} | wc -c) -eq 0 ]"
                f" && [ \"$({flat} | head -c 1)\" = '{{' ]"
                f" && [ \"$({flat} | tail -c 1)\" = '}}' ]"
                f" && ! {flat} | grep -q -e '\\[\"' -e '\"policySha256\":[^\"]'"
                f" || {{ echo held ; exit 0 ; }} ; fi",
                f"f=$(sha256sum {inbox} 2>/dev/null) ; f=${{f%% *}}",
                f"if [ \"$f\" = {sha256} ] && {flat} | grep -q '\"policySha256\":\"{sha256}\"'"
                f" && {flat} | grep -q '\"state\":\"APPLIED\"'; then echo unchanged ; exit 0 ; fi",
            ]
        lines += [
            f"mkdir -p \"$(dirname {inbox})\" || exit {_UPLOAD}",
            f"( umask 077 && cat > {tmp} ) || {{ rm -f {tmp} ; exit {_UPLOAD} ; }}",
            f"h=$(sha256sum {tmp}) ; h=${{h%% *}}",
            f"if [ \"$h\" != {sha256} ]; then rm -f {tmp} ; echo \"$h\" >&2 ;"
            f" exit {_CORRUPT} ; fi",
            f"{{ chmod 0644 {tmp} && mv -f {tmp} {inbox} ; }} ||"
            f" {{ rm -f {tmp} ; exit {_UPLOAD} ; }}",
            f"{p.actions['apply_policy']} >/dev/null ; echo \"applied $?\" ; echo {mark}",
            p.status_command(),
        ]
        return "\n".join(lines)

    def lock(self, command_id: str) -> Delivered:
        """Broadcast the DPC's lock action with the command's id; one round trip."""
        return self._command("lock", command_id)

    def wipe(self, command_id: str) -> Delivered:
        """Broadcast the DPC's wipe action with the command's id; one round trip."""
        return self._command("wipe", command_id)

    def _command(self, action: str, command_id: str) -> Delivered:
        """Send one queued command; succeed only when the DPC answers for this very id."""
        if not COMMAND_ID.fullmatch(command_id):
            raise ValueError(f"{command_id!r} is not a command id")
        command = command_line(self.profile, action, command_id)
        try:
            result = self.transport.run(command, max_output=ANSWER_OUTPUT)
        except OutputTooLarge as exc:
            raise OutputTooLarge(exc.target, f"{action}: {exc.message}") from None
        text = deviceout.decode(result.stdout, action, self._name)
        found = [m for m in _ANSWER.finditer(text.replace("\r\n", "\n"))
                 if m["id"] == command_id]
        if not result.ok or not found:
            said = _words(result.stderr) or text.strip()[-200:]
            raise StepFailed(self._name, f"{action} not confirmed by the DPC (exit"
                             f" {result.exit_status}): {said or 'no answer'}")
        how = found[-1]["how"]
        return Delivered(command_id, how == "already-done", f"{action} {how}")

    def _trust_run(self, script: str, what: str, stdin: bytes | None = None) -> Trust:
        """Run one trust script; return the trust it reads back."""
        from mdm.driver import sshtrust

        try:
            result = self.transport.run(script, stdin=stdin, max_output=64 * 1024)
        except CommandTimeout as exc:
            raise _timed_out(exc, what) from None
        if not result.ok:
            raise sshtrust.refused(self._name, what, result.exit_status, _words(result.stderr))
        text = deviceout.decode(result.stdout, what, self._name)
        return sshtrust.parse_state(text, self.profile.boundary, self._name)

    def _trust_paths(self) -> dict[str, str]:
        from mdm.driver import sshtrust

        return sshtrust.paths({**self.profile.paths, **self.profile.actions})

    def trust(self) -> Trust:
        """Return whom the device's sshd trusts, in one round trip."""
        from mdm.driver import sshtrust

        script = sshtrust.state_script(self._trust_paths(), self.profile.boundary)
        return self._trust_run(script, "reading the SSH trust")

    def trust_ca(self, ca_line: str, principals: tuple[str, ...]) -> Trust:
        """Install the user CA and the principals file (each principal runs its role)."""
        from mdm.driver import sshtrust

        shell = {**sshtrust.PATHS, **self.profile.actions}["shell"]
        script = sshtrust.trust_ca_script(self._trust_paths(), ca_line, principals, shell,
                                          uuid.uuid4().hex[:12], self.profile.boundary)
        trust = self._trust_run(script, "installing the CA trust")
        if trust.ca != sshtrust.ca_key(ca_line):
            raise StepFailed(self._name, "the CA trust was written but the device reads back"
                                         " another CA")
        return trust

    def install_krl(self, krl: bytes, version: int) -> Trust:
        """Install a key revocation list (sha256 checked on the device) and its version."""
        import hashlib

        from mdm.driver import sshtrust

        if not krl.startswith(sshtrust.KRL_MAGIC) or version < 1:
            raise ValueError("not an OpenSSH KRL, or a version below 1")
        script = sshtrust.krl_script(self._trust_paths(), hashlib.sha256(krl).hexdigest(),
                                     version, uuid.uuid4().hex[:12], self.profile.boundary)
        trust = self._trust_run(script, "installing the revocation list", stdin=krl)
        if trust.krl_version != version:
            raise StepFailed(self._name, f"the revocation list was written but the device"
                                         f" reads back version {trust.krl_version}")
        return trust

    def remove_plain_keys(self) -> Trust:
        """Empty authorized_keys; the device refuses while it trusts no CA."""
        from mdm.driver import sshtrust

        script = sshtrust.remove_plain_script(self._trust_paths(), uuid.uuid4().hex[:12],
                                              self.profile.boundary)
        return self._trust_run(script, "removing the plain key")

    def close(self) -> None:
        self.transport.close()


def command_line(profile: Profile, action: str, command_id: str) -> str:
    """Return the device command of a queued lock or wipe, carrying the command's id."""
    return f"{profile.actions[action]} --es {COMMAND_EXTRA} {command_id}"


def _runs(reading: StatusReading, sha256: str) -> bool:
    """Whether a status reading proves the device already runs this policy."""
    dpc = reading.dpc or {}
    return dpc.get("policySha256") == sha256 and dpc.get("state") == "APPLIED" \
        and reading.policy_file == sha256


def _timed_out(exc: CommandTimeout, what: str) -> CommandTimeout:
    """Name the step that timed out in words, not the device-side command that ran it."""
    after = f" after {exc.seconds:g} s" if exc.seconds is not None else ""
    via = f" (via {exc.via})" if exc.via else ""
    return CommandTimeout(exc.target, f"{what} timed out{after}{via}", exc.seconds, exc.via)


def _printable(text: str) -> str:
    """The device's words on one line, control characters dropped, cut short."""
    return " ".join("".join(c for c in text if c.isprintable() or c in "\n\t").split())[:300]


def _words(stderr: bytes) -> str:
    """The device's own words about a failure: its stderr, cut short, printable."""
    return stderr.decode(errors="replace").strip()[:200]
