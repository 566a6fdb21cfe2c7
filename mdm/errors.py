"""Exit codes and the one error type domain code raises.

Domain code never prints or exits: it raises `MdmError`, and the root CLI turns it
into a message on stderr and an exit code. Bad input always carries every problem
found (file, row, field, what to do), so a user fixes a file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PARTIAL = 1  # the operation ran, some devices failed (each named)
    USAGE = 2  # bad input or usage; nothing changed
    INTERNAL = 70  # a bug (EX_SOFTWARE): never raised on purpose
    INTERRUPTED = 130  # Ctrl-C: finished work is recorded


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what is wrong, what to do."""

    where: str
    message: str
    hint: str = ""
    field: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "field": self.field, "message": self.message,
                "hint": self.hint}

    def __str__(self) -> str:
        loc = f"{self.where}, {self.field}" if self.field else self.where
        text = f"{loc}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


@dataclass
class MdmError(Exception):
    """A failure the user can act on; `code` says which exit code it maps to."""

    message: str
    hint: str = ""
    code: ExitCode = ExitCode.USAGE
    problems: list[Problem] = field(default_factory=list)
    where: str = ""  # the file, row, field or device, when the error has one place

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InputError(MdmError):
    """Bad input (file, arguments, state that forbids the change): exit 2, nothing changed."""


class NotFound(InputError):
    """The thing named on the command line is not in the inventory."""


class PermissionDenied(MdmError):
    """The operator's role may not run this command."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint, ExitCode.USAGE)


class PartialFailure(MdmError):
    """The run went on, but some devices failed; each is named in `problems`."""

    def __init__(self, message: str, problems: list[Problem], result: object = None) -> None:
        super().__init__(message, "", ExitCode.PARTIAL, problems)
        self.result = result
