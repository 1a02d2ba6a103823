"""When a connector's lock must be brought back to its safe state without anyone asking.

A charger in the field must recover on its own: a lock that failed to move once (at the start of
a transaction, or on UnlockConnector) is driven towards released again while no transaction
runs, with a growing pause that spares the coil; and an empty socket never stays latched. The
feedback alone says when the lock is back: the fault reading clears as soon as it agrees with
the command.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from cp_pi.core.reading import ConnectorReading, LockPosition


class LockCare(StrEnum):
    """What the lock of a connector needs, now that nobody uses it."""

    NONE = "none"
    #: The lock reads engaged in an empty socket: release it before calling the socket Available.
    RELEASE_NOW = "release_now"
    #: A lock fault with no transaction: drive it towards released again, after a pause.
    HEAL = "heal"


def lock_care(
    *,
    has_lock: bool,
    transaction_running: bool,
    contactor_closed: bool,
    cable_present: bool,
    lock_feedback: LockPosition | None,
    reading: ConnectorReading,
) -> LockCare:
    """The lock's safe state is released whenever no transaction runs; it is never driven while
    the contactor is closed (a welded contactor reads as such, not as a lock fault).

    A cable still in after a transaction is left locked when the lock is sound: the owner's tag
    releases it (after a safety stop, the cable stays with the charger until its owner is back).
    """
    if not has_lock or transaction_running or contactor_closed:
        return LockCare.NONE
    if reading.is_lock_fault:
        return LockCare.HEAL
    if (
        reading is ConnectorReading.GOOD_CONNECTION
        and not cable_present
        and lock_feedback is LockPosition.ENGAGED
    ):
        return LockCare.RELEASE_NOW
    return LockCare.NONE


def heal_pauses(first: float, longest: float) -> Iterator[float]:
    """The pauses before each retry: ``first``, doubling, then ``longest`` for ever."""
    pause = min(first, longest)
    while True:
        yield pause
        pause = min(pause * 2, longest)
