"""A failed meter is reported as PowerMeterFailure without faulting the connector."""

from __future__ import annotations

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.status import (
    ConnectorFacts,
    ErrorCode,
    Status,
    connector_status,
    status_info,
    takes_new_transaction,
)


def facts(
    *, meter_ok: bool, reading: ConnectorReading = ConnectorReading.GOOD_CONNECTION
) -> ConnectorFacts:
    return ConnectorFacts(
        operative=True,
        reading=reading,
        cable_present=True,
        transaction_running=True,
        energy_offered=True,
        meter_ok=meter_ok,
    )


def test_a_charge_with_a_failed_meter_is_charging_with_power_meter_failure() -> None:
    assert connector_status(facts(meter_ok=False)) == (
        Status.CHARGING,
        ErrorCode.POWER_METER_FAILURE,
    )
    assert status_info(facts(meter_ok=False)) is not None
    assert connector_status(facts(meter_ok=True)) == (Status.CHARGING, ErrorCode.NO_ERROR)


def test_a_hardware_fault_outranks_a_failed_meter() -> None:
    welded = facts(meter_ok=False, reading=ConnectorReading.CONTACTOR_WELDED)
    assert connector_status(welded) == (Status.FAULTED, ErrorCode.POWER_SWITCH_FAILURE)


def test_an_idle_connector_with_a_failed_meter_still_takes_a_transaction() -> None:
    idle = ConnectorFacts(
        operative=True,
        reading=ConnectorReading.GOOD_CONNECTION,
        cable_present=False,
        transaction_running=False,
        energy_offered=False,
        meter_ok=False,
    )
    status, error = connector_status(idle)
    assert (status, error) == (Status.AVAILABLE, ErrorCode.POWER_METER_FAILURE)
    assert takes_new_transaction(status)
