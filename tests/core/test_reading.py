"""The connector reading: which disagreement between command and feedback is which fault."""

from __future__ import annotations

import dataclasses

import pytest

from cp_pi.core.reading import (
    ConnectorReading,
    LockPosition,
    PinSnapshot,
    assess,
    energised_without_cable,
)

ENGAGED, RELEASED = LockPosition.ENGAGED, LockPosition.RELEASED

HEALTHY_CHARGING = PinSnapshot(
    cable_present=True,
    lock_feedback=ENGAGED,
    lock_commanded=ENGAGED,
    lock_moving=False,
    lock_drive_failed=False,
    contactor_commanded_closed=True,
    contactor_feedback_closed=True,
    contactor_settling=False,
)


def reading(**changes: object) -> ConnectorReading:
    return assess(dataclasses.replace(HEALTHY_CHARGING, **changes))  # type: ignore[arg-type]


def test_healthy_chain_is_good_connection() -> None:
    assert reading() is ConnectorReading.GOOD_CONNECTION


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"lock_feedback": RELEASED}, ConnectorReading.LOCK_UNEXPECTEDLY_OPEN),
        (
            {
                "lock_commanded": RELEASED,
                "contactor_commanded_closed": False,
                "contactor_feedback_closed": False,
            },
            ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED,
        ),
        ({"lock_drive_failed": True}, ConnectorReading.LOCK_FAILED_TO_MOVE),
        ({"contactor_commanded_closed": False}, ConnectorReading.CONTACTOR_WELDED),
        ({"contactor_feedback_closed": False}, ConnectorReading.CONTACTOR_FAILED_TO_CLOSE),
        ({"read_error": True}, ConnectorReading.PIN_READ_ERROR),
    ],
)
def test_each_disagreement_names_its_fault(
    changes: dict[str, object], expected: ConnectorReading
) -> None:
    assert reading(**changes) is expected


def test_a_welded_contactor_outranks_a_lock_fault() -> None:
    assert (
        reading(contactor_commanded_closed=False, lock_feedback=RELEASED)
        is ConnectorReading.CONTACTOR_WELDED
    )


def test_transitions_are_not_faults() -> None:
    assert reading(lock_feedback=RELEASED, lock_moving=True) is ConnectorReading.GOOD_CONNECTION
    assert (
        reading(contactor_commanded_closed=False, contactor_settling=True)
        is ConnectorReading.GOOD_CONNECTION
    )


def test_parts_a_connector_lacks_are_never_faults() -> None:
    no_lock_no_aux = reading(
        lock_feedback=None, lock_commanded=None, contactor_feedback_closed=None
    )
    assert no_lock_no_aux is ConnectorReading.GOOD_CONNECTION


def test_nothing_commanded_yet_accepts_what_the_feedback_says() -> None:
    assert reading(lock_commanded=None, lock_feedback=RELEASED) is ConnectorReading.GOOD_CONNECTION


def test_only_lock_faults_are_reported_as_connector_lock_failure() -> None:
    lock_faults = {r for r in ConnectorReading if r.is_lock_fault}
    assert lock_faults == {
        ConnectorReading.LOCK_FAILED_TO_MOVE,
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
        ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED,
    }


@pytest.mark.parametrize(
    ("cable", "closed", "live_and_empty"),
    [(False, True, True), (True, True, False), (False, False, False), (True, False, False)],
)
def test_a_closed_contactor_on_an_empty_socket_must_open(
    cable: bool, closed: bool, live_and_empty: bool
) -> None:
    snapshot = dataclasses.replace(
        HEALTHY_CHARGING, cable_present=cable, contactor_commanded_closed=closed
    )
    assert energised_without_cable(snapshot) is live_and_empty
