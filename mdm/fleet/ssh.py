"""The SSH transport (paramiko): pinned host keys, a deadline on every step, no deadlocks.

- Host keys: the key pinned at enrolment is loaded before connecting and paramiko's
  RejectPolicy refuses anything else; an unknown or changed key raises HostKeyError
  naming both fingerprints. Keys are never auto-accepted.
- Deadlines: TCP connect, banner, auth and channel-open each have a timeout; a command
  is read against a wall-clock deadline (never a bare `recv_exit_status()`), and is also
  wrapped in the device's own `timeout` so a hung process dies on the device too.
- Output: stdout and stderr are drained together, so 10 MiB on each cannot deadlock;
  past a cap (16 MiB by default) mdm stops reading, hangs up the channel and fails the
  device, so a device cannot fill the operator's memory.
- Algorithms: CBC ciphers, SHA-1/MD5 MACs and SHA-1 key exchange are never offered, so a
  device (or a machine in the middle) that offers only those fails to negotiate.
- Uploads: streamed to a temporary name, checked by sha256 on the device, renamed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import os
import re
import select
import socket
import time
import uuid
from typing import Any

import paramiko

from mdm.fleet.keys import fingerprint, fingerprint_of_line, key_path
from mdm.fleet.transport import (
    MAX_OUTPUT,
    AuthFailed,
    CommandResult,
    CommandTimeout,
    Credentials,
    FleetError,
    HostKeyError,
    OutputTooLarge,
    Stdin,
    Target,
    Timeouts,
    Unreachable,
    checked_upload,
    on_device,
)

# paramiko logs a failed handshake with a traceback from its own thread; mdm reports the
# failure itself (per device), so that log must not reach the operator's terminal.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# Offered by paramiko (some versions) but never by mdm: CBC ciphers, SHA-1 and MD5 MACs in
# every form, SHA-1 key exchange. Names a paramiko version does not know are ignored.
DISABLED_ALGORITHMS: dict[str, list[str]] = {
    "ciphers": ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc",
                "cast128-cbc", "rijndael-cbc@lysator.liu.se"],
    "macs": ["hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96",
             "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com",
             "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com"],
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1"],
}
_SAFE_PATH = re.compile(r'^[A-Za-z0-9_./${}:@+-]+$')
STDIN_CHUNK = 1 << 17  # bytes of a streamed stdin read and sent at a time


def load_credentials(path: str | None = None) -> Credentials:
    """Load the operator's private key (MDM_KEY_PASSPHRASE if encrypted; else ssh-agent).

    A certificate beside it (`<key>-cert.pub`, from mdm login) is presented with it.
    """
    from mdm.errors import InputError

    file = key_path(path)
    if not file.exists():
        raise InputError(f"no operator key at {file}",
                         "create one with: mdm keys init (or set MDM_KEY)")
    secret = os.environ.get("MDM_KEY_PASSPHRASE")
    try:
        # paramiko's stubs say str, but the key loader underneath needs bytes
        pkey = paramiko.PKey.from_path(str(file), password=secret.encode() if secret  # type: ignore[arg-type]
                                       else None)
    except (paramiko.PasswordRequiredException, TypeError):
        if secret:
            raise InputError(f"cannot load the operator key {file}",
                             "check MDM_KEY_PASSPHRASE") from None
        # An encrypted key and no passphrase given: ssh-agent must hold it.
        cert = file.with_name(file.name + "-cert.pub")
        return Credentials(pkey=None, allow_agent=True,
                           certificate=str(cert) if cert.exists() else None)
    except (paramiko.SSHException, ValueError) as exc:
        raise InputError(f"cannot load the operator key {file}: {type(exc).__name__}",
                         "check MDM_KEY_PASSPHRASE, or create a key with mdm keys init") from None
    plain = None
    if pkey.public_blob is not None:  # paramiko loaded `<key>-cert.pub`: present it first
        plain = copy.copy(pkey)
        plain.public_blob = None
    return Credentials(pkey=pkey, allow_agent=False, plain=plain)


def _agent_certificate(client: paramiko.SSHClient, cert: str) -> paramiko.PKey | None:
    """Return the agent's copy of the (ed25519) key with its certificate loaded, if any.

    The agent is handed to the client, which closes it with the connection and offers the
    agent's plain keys after the certificate.
    """
    from paramiko.pkey import PublicBlob

    try:
        inner = paramiko.Message(PublicBlob.from_file(cert).key_blob)
        if inner.get_text() != "ssh-ed25519-cert-v01@openssh.com":
            return None
        inner.get_string()  # the nonce; the certified key follows it
        wanted = inner.get_string()
        agent = paramiko.Agent()
        client._agent = agent  # type: ignore[attr-defined]
        for key in agent.get_keys():
            plain = paramiko.Message(key.asbytes())
            if plain.get_text() == "ssh-ed25519" and plain.get_string() == wanted:
                key.load_certificate(cert)
                return key
    except (paramiko.SSHException, ValueError, OSError):
        return None
    return None


def _socket(target: Target, timeouts: Timeouts) -> socket.socket:
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeouts.connect)
    except OSError as exc:
        raise Unreachable(target.name, f"cannot connect to {target.host}:{target.port}"
                                       f" ({exc.strerror or exc})") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def keyscan(target: Target, timeouts: Timeouts | None = None) -> str:
    """Return the public key line a device offers, without authenticating or trusting it."""
    t = timeouts or Timeouts()
    sock = _socket(target, t)
    transport = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    transport.banner_timeout = t.banner
    opts = transport.get_security_options()
    opts.key_types = ["ssh-ed25519"] + [k for k in opts.key_types if k != "ssh-ed25519"]
    try:
        transport.start_client(timeout=t.banner)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise Unreachable(target.name, f"no SSH handshake with {target.host}:{target.port}"
                                       f" ({exc})") from None
    finally:
        transport.close()


def _host_name(target: Target) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _quote_path(path: str) -> str:
    """Double-quote a device path, keeping $HOME-style expansion but nothing else."""
    if not _SAFE_PATH.match(path):
        raise ValueError(f"unsafe device path {path!r}")
    return f'"{path}"'


def upload_plan(data: bytes, remote_path: str, mode: str) -> tuple[str, str, str]:
    """Return an upload's sha256, its quoted final path and a quoted temporary name beside it."""
    if not re.fullmatch(r"0?[0-7]{3}", mode):
        raise ValueError(f"bad mode {mode!r}")
    return (hashlib.sha256(data).hexdigest(), _quote_path(remote_path),
            _quote_path(f"{remote_path}.mdm-{uuid.uuid4().hex[:12]}"))


class ParamikoTransport:
    """One SSH connection to one device, for all the steps of a run."""

    def __init__(self, target: Target, credentials: Credentials,
                 timeouts: Timeouts | None = None) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()
        self._client = self._connect(credentials)

    def _connect(self, credentials: Credentials) -> paramiko.SSHClient:
        t, target = self.timeouts, self.target
        if not target.host_key:
            raise HostKeyError(target.name, None, "(unknown: the device is not enrolled)")
        key_type, blob = target.host_key.split()[:2]
        pinned = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(_host_name(target), key_type, pinned)
        sock = _socket(target, t)
        pkey = credentials.pkey
        if pkey is None and credentials.certificate and os.environ.get("SSH_AUTH_SOCK"):
            pkey = _agent_certificate(client, credentials.certificate)
        try:
            client.connect(target.host, target.port, username=target.user,
                           pkey=pkey, sock=sock, timeout=t.connect,
                           banner_timeout=t.banner, auth_timeout=t.auth,
                           channel_timeout=t.channel, look_for_keys=False,
                           allow_agent=credentials.allow_agent,
                           disabled_algorithms=DISABLED_ALGORITHMS)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(target.name, fingerprint_of_line(target.host_key),
                               fingerprint(exc.key.asbytes())) from None
        except paramiko.AuthenticationException:
            if not _plain_accepted(client, target, credentials):
                client.close()
                raise AuthFailed(target.name, "the device refused the operator's"
                                 f" {'certificate and ' if credentials.plain else ''}key"
                                 ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            client.close()
            if "known_hosts" in str(exc) or "host key" in str(exc).lower():
                raise HostKeyError(target.name, fingerprint_of_line(target.host_key),
                                   "(a key of another type)") from None
            raise Unreachable(target.name, f"SSH handshake failed ({exc})") from None
        return client

    def run(self, command: str, timeout: float | None = None,
            stdin: Stdin = None, max_output: int | None = None) -> CommandResult:
        """Run one command; stdout and stderr drained together, against a deadline.

        `stdin` may be an open file: it is sent in chunks as the device reads it.

        The device runs it under its own `timeout` (TERM to the command's whole process
        group a second after our deadline, KILL a second later), so nothing it started
        outlives the deadline there either. More than `max_output` bytes on either
        stream (default MAX_OUTPUT) stops the reading, closes the channel and fails the device.
        """
        cap = MAX_OUTPUT if max_output is None else max_output
        limit = timeout if timeout is not None else self.timeouts.command
        started = time.monotonic()
        deadline = started + limit
        wrapped = on_device(command, int(limit) + 1)
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise Unreachable(self.target.name, "the connection has dropped")
        try:
            chan = transport.open_session(timeout=self.timeouts.channel)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise Unreachable(self.target.name, f"cannot open a channel ({exc})") from None
        try:
            chan.settimeout(limit)
            chan.exec_command(wrapped)
            if isinstance(stdin, bytes):
                if stdin:
                    chan.sendall(stdin)
            elif stdin is not None:
                while chunk := stdin.read(STDIN_CHUNK):
                    chan.sendall(chunk)
            chan.shutdown_write()
            out, err = self._drain(chan, deadline, command, cap)
            status = chan.recv_exit_status() if chan.exit_status_ready() else -1
        except TimeoutError:
            raise CommandTimeout(self.target.name,
                                 f"{_short(command)!r} did not finish within {limit:g} s",
                                 limit) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise Unreachable(self.target.name, f"connection lost during a command ({exc})"
                              ) from None
        finally:
            chan.close()
        return CommandResult(command, status, out, err, time.monotonic() - started)

    def _drain(self, chan: paramiko.Channel, deadline: float,
               command: str, cap: int) -> tuple[bytes, bytes]:
        out: list[bytes] = []
        err: list[bytes] = []
        sizes = [0, 0]
        fd = chan.fileno()
        while True:
            for i, (ready, recv, sink) in enumerate(
                    ((chan.recv_ready, chan.recv, out), (chan.recv_stderr_ready,
                                                         chan.recv_stderr, err))):
                while ready():
                    chunk = recv(1 << 16)
                    sizes[i] += len(chunk)
                    if sizes[i] > cap:  # the caller's finally closes the channel
                        raise OutputTooLarge(self.target.name, f"the command printed more than"
                                             f" {_size(cap)} on {('stdout', 'stderr')[i]};"
                                             " stopped reading")
                    sink.append(chunk)
            if chan.exit_status_ready() and (chan.eof_received or chan.closed) \
                    and not chan.recv_ready() and not chan.recv_stderr_ready():
                return b"".join(out), b"".join(err)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(command)
            select.select([fd], [], [], min(remaining, 0.5))

    def put(self, data: bytes, remote_path: str, mode: str = "0644") -> str:
        """Upload to a temporary name, check sha256 on the device, then rename into place."""
        expected, final, tmp = upload_plan(data, remote_path, mode)
        script = (f'mkdir -p "$(dirname {final})" && umask 077 && cat > {tmp} &&'
                  f' h=$(sha256sum {tmp}) && h=${{h%% *}} && echo "$h" &&'
                  f' if [ "$h" = {expected} ]; then chmod {mode} {tmp} && mv -f {tmp} {final};'
                  f' else rm -f {tmp}; exit 3; fi')
        result = self.run(script, stdin=data, timeout=self.timeouts.command)
        return checked_upload(self.target.name, remote_path, expected, result,
                              result.stderr.decode(errors="replace"))

    def host_key(self) -> str:
        """Return the fingerprint of the key this connection was made with."""
        transport = self._client.get_transport()
        assert transport is not None
        return fingerprint(transport.get_remote_server_key().asbytes())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ParamikoTransport:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _plain_accepted(client: paramiko.SSHClient, target: Target,
                    credentials: Credentials) -> bool:
    """Offer the key without its certificate, once the device has refused the certificate."""
    transport = client.get_transport()
    if credentials.plain is None or transport is None or not transport.is_active():
        return False
    try:
        transport.auth_publickey(target.user, credentials.plain)
    except (paramiko.SSHException, EOFError, OSError):
        return False
    return transport.is_authenticated()


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "…"


def _size(count: int) -> str:
    return f"{count // (1 << 20)} MiB" if count >= 1 << 20 else f"{count} bytes"


def connector(credentials: Credentials, timeouts: Timeouts | None = None) -> Any:
    """Return a function that opens a ParamikoTransport to a target."""

    def connect(target: Target) -> ParamikoTransport:
        return ParamikoTransport(target, credentials, timeouts)

    return connect


__all__ = ["FleetError", "ParamikoTransport", "connector", "keyscan", "load_credentials"]
