"""Connector status as OCPP 1.6 section 4.9 describes it, derived from the facts."""

from __future__ import annotations

import dataclasses

import pytest

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.status import (
    ConnectorFacts,
    ErrorCode,
    Status,
    charge_point_status,
    connector_status,
    status_info,
)

IDLE = ConnectorFacts(
    operative=True,
    reading=ConnectorReading.GOOD_CONNECTION,
    cable_present=False,
    transaction_running=False,
    energy_offered=False,
)


def status(**changes: object) -> tuple[Status, ErrorCode]:
    return connector_status(dataclasses.replace(IDLE, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Status.AVAILABLE),
        ({"cable_present": True}, Status.PREPARING),
        ({"awaiting_cable": True}, Status.PREPARING),
        (
            {"cable_present": True, "transaction_running": True, "energy_offered": True},
            Status.CHARGING,
        ),
        ({"cable_present": True, "transaction_running": True}, Status.SUSPENDED_EVSE),
        ({"transaction_running": True}, Status.SUSPENDED_EV),
        ({"cable_present": True, "finishing": True}, Status.FINISHING),
        ({"finishing": True}, Status.AVAILABLE),  # the cable went: Finishing ends
        ({"operative": False}, Status.UNAVAILABLE),
        ({"operative": False, "cable_present": True}, Status.UNAVAILABLE),
    ],
)
def test_status_follows_the_facts(changes: dict[str, object], expected: Status) -> None:
    assert status(**changes) == (expected, ErrorCode.NO_ERROR)


def test_a_running_transaction_outlasts_a_scheduled_inoperative() -> None:
    running = {"cable_present": True, "transaction_running": True, "energy_offered": True}
    assert status(operative=False, **running)[0] is Status.CHARGING


@pytest.mark.parametrize(
    ("reading", "code"),
    [
        (ConnectorReading.LOCK_FAILED_TO_MOVE, ErrorCode.CONNECTOR_LOCK_FAILURE),
        (ConnectorReading.LOCK_UNEXPECTEDLY_OPEN, ErrorCode.CONNECTOR_LOCK_FAILURE),
        (ConnectorReading.CONTACTOR_WELDED, ErrorCode.POWER_SWITCH_FAILURE),
        (ConnectorReading.PIN_READ_ERROR, ErrorCode.INTERNAL_ERROR),
    ],
)
def test_faults_are_faulted_with_their_error_code(
    reading: ConnectorReading, code: ErrorCode
) -> None:
    assert status(reading=reading, cable_present=True) == (Status.FAULTED, code)


def test_a_transaction_without_its_cable_says_the_ev_side_was_disconnected() -> None:
    unplugged = dataclasses.replace(IDLE, transaction_running=True)
    assert status_info(unplugged) == "EV side disconnected"
    assert status_info(dataclasses.replace(unplugged, cable_present=True)) is None
    assert status_info(IDLE) is None
    faulted = dataclasses.replace(unplugged, reading=ConnectorReading.CONTACTOR_WELDED)
    assert status_info(faulted) is None  # the fault is the info then


def test_connector_zero_is_available_or_unavailable() -> None:
    assert charge_point_status(operative=True)[0] is Status.AVAILABLE
    assert charge_point_status(operative=False)[0] is Status.UNAVAILABLE
