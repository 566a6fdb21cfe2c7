"""The device lifecycle: every status and every allowed move, in one place.

Status answers "what state is the device in"; who holds it is custody (assignments),
kept apart on purpose. Features change status only through `check_transition`.
"""

from __future__ import annotations

from enum import StrEnum

from mdm.errors import InputError


class Status(StrEnum):
    DELIVERED = "delivered"
    ENROLLED = "enrolled"
    PROVISIONED = "provisioned"
    QUARANTINED = "quarantined"
    LOST = "lost"
    STOLEN = "stolen"
    WIPED = "wiped"
    IN_REPAIR = "in_repair"
    RETIRED = "retired"


_ANY = set(Status) - {Status.RETIRED}

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.DELIVERED: frozenset({Status.ENROLLED}),
    # A returned device whose wipe is confirmed goes to stock (wiped, ready to re-enrol).
    Status.ENROLLED: frozenset({Status.PROVISIONED, Status.QUARANTINED, Status.ENROLLED,
                                Status.WIPED}),
    Status.PROVISIONED: frozenset({Status.QUARANTINED, Status.ENROLLED, Status.WIPED}),
    Status.QUARANTINED: frozenset({Status.ENROLLED, Status.WIPED}),
    # Recovered before its wipe: back to stock (enrolled), or quarantined if it now
    # offers another host key (re-enrolment proves it is the same phone).
    # (A device lost before it was ever enrolled goes back to delivered.)
    Status.LOST: frozenset({Status.WIPED, Status.ENROLLED, Status.QUARANTINED,
                            Status.DELIVERED}),
    Status.STOLEN: frozenset({Status.WIPED, Status.ENROLLED, Status.QUARANTINED,
                              Status.DELIVERED}),
    Status.WIPED: frozenset({Status.ENROLLED, Status.RETIRED}),
    Status.IN_REPAIR: frozenset({Status.ENROLLED}),
    Status.RETIRED: frozenset(),
}
# Moves open from any live status: loss, theft, repair and retirement.
for _status in _ANY:
    ALLOWED[_status] = ALLOWED[_status] | {Status.LOST, Status.STOLEN, Status.IN_REPAIR,
                                           Status.RETIRED}
ALLOWED[Status.IN_REPAIR] = ALLOWED[Status.IN_REPAIR] - {Status.IN_REPAIR}
ALLOWED[Status.LOST] = ALLOWED[Status.LOST] - {Status.LOST}
ALLOWED[Status.STOLEN] = ALLOWED[Status.STOLEN] - {Status.STOLEN}

# Statuses in which a device may be allocated to an officer.
ASSIGNABLE = frozenset({Status.DELIVERED, Status.ENROLLED, Status.PROVISIONED})


def check_transition(serial: str, current: str, new: Status) -> None:
    """Refuse a status change the lifecycle does not allow."""
    cur = Status(current)
    if new not in ALLOWED[cur]:
        allowed = ", ".join(sorted(ALLOWED[cur])) or "none (retired is final)"
        raise InputError(f"device {serial} is {cur}; it cannot become {new}",
                         f"from {cur} it may become: {allowed}")
