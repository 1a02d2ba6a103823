"""When a lock is brought back by itself, and how long the charge point waits between tries."""

from __future__ import annotations

from itertools import islice
from typing import Any

import pytest

from cp_pi.core.healing import LockCare, heal_pauses, lock_care
from cp_pi.core.reading import ConnectorReading, LockPosition

IDLE_EMPTY: dict[str, Any] = {
    "has_lock": True,
    "transaction_running": False,
    "contactor_closed": False,
    "cable_present": False,
    "lock_feedback": LockPosition.RELEASED,
    "reading": ConnectorReading.GOOD_CONNECTION,
}


def care(**changes: Any) -> LockCare:
    return lock_care(**(IDLE_EMPTY | changes))


def test_a_released_lock_in_an_empty_socket_needs_nothing() -> None:
    assert care() is LockCare.NONE


def test_an_empty_socket_found_latched_is_released_at_once() -> None:
    assert care(lock_feedback=LockPosition.ENGAGED) is LockCare.RELEASE_NOW


def test_a_cable_left_locked_after_a_transaction_waits_for_its_owner() -> None:
    assert care(lock_feedback=LockPosition.ENGAGED, cable_present=True) is LockCare.NONE


@pytest.mark.parametrize(
    "reading",
    [
        ConnectorReading.LOCK_FAILED_TO_MOVE,
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
        ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED,
    ],
)
@pytest.mark.parametrize("cable_present", [True, False])
def test_a_lock_fault_with_no_transaction_is_healed(
    reading: ConnectorReading, cable_present: bool
) -> None:
    assert care(reading=reading, cable_present=cable_present) is LockCare.HEAL


@pytest.mark.parametrize(
    "changes",
    [
        {"transaction_running": True},  # the lock holds a charging cable
        {"contactor_closed": True},  # never driven while the socket may be live
        {"has_lock": False},
        {"reading": ConnectorReading.CONTACTOR_WELDED},  # clears by its aux contact alone
        {"reading": ConnectorReading.PIN_READ_ERROR},  # no drive can be judged
    ],
)
def test_no_drive_while_it_would_be_unsafe_or_blind(changes: dict[str, Any]) -> None:
    locked = {"lock_feedback": LockPosition.ENGAGED}
    assert care(**(locked | changes)) is LockCare.NONE
    if "reading" not in changes:
        assert care(**(changes | {"reading": ConnectorReading.LOCK_FAILED_TO_MOVE})) is (
            LockCare.NONE
        )


def test_the_pause_doubles_from_5_s_to_5_min() -> None:
    assert list(islice(heal_pauses(5, 300), 9)) == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_first_pause_above_the_longest_is_the_longest() -> None:
    assert list(islice(heal_pauses(10, 4), 2)) == [4, 4]
