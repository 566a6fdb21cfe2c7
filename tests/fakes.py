"""A fake transport that answers scripted commands and fails on unexpected ones."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mdm.fleet.transport import MAX_OUTPUT, CommandResult, OutputTooLarge, Target

Reply = tuple[int, bytes, bytes] | Callable[[str, bytes | None], tuple[int, bytes, bytes]]


@dataclass
class FakeTransport:
    target: Target
    replies: list[tuple[re.Pattern[str], Reply]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    closed: bool = False
    fingerprint: str = "SHA256:fake"

    def expect(self, pattern: str, reply: Reply) -> FakeTransport:
        self.replies.append((re.compile(pattern), reply))
        return self

    def run(self, command: str, timeout: float | None = None,
            stdin: bytes | None = None, max_output: int | None = None) -> CommandResult:
        assert not self.closed, "run() after close()"
        self.commands.append(command)
        for pattern, reply in self.replies:
            if pattern.search(command):
                code, out, err = reply(command, stdin) if callable(reply) else reply
                if max(len(out), len(err)) > (MAX_OUTPUT if max_output is None else max_output):
                    raise OutputTooLarge(self.target.name, "printed too much; stopped reading")
                return CommandResult(command, code, out, err, 0.0)
        raise AssertionError(f"unexpected command on {self.target.name}: {command!r}")

    def put(self, data: bytes, remote_path: str, mode: str = "0644") -> str:
        if not re.fullmatch(r"[A-Za-z0-9_./${}:@+-]+", remote_path):
            raise ValueError(f"unsafe device path {remote_path!r}")
        self.files[remote_path] = data
        return hashlib.sha256(data).hexdigest()

    def host_key(self) -> str:
        return self.fingerprint

    def close(self) -> None:
        self.closed = True


def echo_stdin(command: str, stdin: bytes | None) -> tuple[int, bytes, bytes]:
    return 0, stdin or b"", b""
