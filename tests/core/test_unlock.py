"""The UnlockConnector decision (seed SDK + OCPP 1.6 rules), without hardware."""

from __future__ import annotations

import pytest

from cp_pi.core.reading import ConnectorReading, LockOutcome, LockResult
from cp_pi.core.unlock import UnlockPlan, UnlockStatus, plan_unlock, unlock_status

GOOD = ConnectorReading.GOOD_CONNECTION


def plan(
    *,
    exists: bool = True,
    lock: bool = True,
    reading: ConnectorReading = GOOD,
    charging: bool = False,
) -> UnlockPlan:
    return plan_unlock(
        connector_exists=exists, has_lock=lock, reading=reading, transaction_running=charging
    )


@pytest.mark.parametrize("charging", [False, True])
def test_no_such_connector_is_not_supported(charging: bool) -> None:
    assert plan(exists=False, charging=charging) == UnlockPlan(answer=UnlockStatus.NOT_SUPPORTED)


def test_fixed_cable_is_not_supported_and_the_charge_goes_on() -> None:
    decision = plan(lock=False, charging=True)
    assert decision.answer is UnlockStatus.NOT_SUPPORTED
    assert not decision.stop_transaction
    assert not decision.drive_lock


def test_good_connection_while_charging_finishes_the_transaction_then_drives() -> None:
    decision = plan(charging=True)
    assert decision.stop_transaction
    assert decision.drive_lock
    assert decision.answer is None


def test_good_connection_without_transaction_only_drives() -> None:
    decision = plan()
    assert decision.drive_lock
    assert not decision.stop_transaction


@pytest.mark.parametrize(
    "reading",
    [
        ConnectorReading.PIN_READ_ERROR,
        ConnectorReading.CONTACTOR_WELDED,
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
    ],
)
def test_untrustworthy_readings_fail_without_driving(reading: ConnectorReading) -> None:
    decision = plan(reading=reading, charging=True)
    assert decision.answer is UnlockStatus.UNLOCK_FAILED
    assert not decision.drive_lock
    assert decision.stop_transaction  # energy still stops: the CSMS asked for the cable


@pytest.mark.parametrize(
    "reading",
    [ConnectorReading.LOCK_FAILED_TO_MOVE, ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED],
)
def test_a_lock_that_failed_before_is_tried_again(reading: ConnectorReading) -> None:
    assert plan(reading=reading).drive_lock


def test_feedback_decides_unlocked() -> None:
    released = LockResult(LockOutcome.UNLOCKED, attempts=1)
    assert unlock_status(contactor_open=True, result=released) is UnlockStatus.UNLOCKED


@pytest.mark.parametrize(
    ("contactor_open", "result"),
    [
        (
            True,
            LockResult(LockOutcome.FAILED, attempts=3, fault=ConnectorReading.LOCK_FAILED_TO_MOVE),
        ),
        (True, None),  # no answer from the lock in time
        (False, LockResult(LockOutcome.UNLOCKED, attempts=1)),  # never trust a closed contactor
        (True, LockResult(LockOutcome.LOCKED, attempts=1)),
    ],
)
def test_anything_but_a_confirmed_release_is_unlock_failed(
    contactor_open: bool, result: LockResult | None
) -> None:
    assert unlock_status(contactor_open=contactor_open, result=result) is UnlockStatus.UNLOCK_FAILED


def test_status_values_are_the_ocpp_schema_enum() -> None:
    assert {s.value for s in UnlockStatus} == {"Unlocked", "UnlockFailed", "NotSupported"}
