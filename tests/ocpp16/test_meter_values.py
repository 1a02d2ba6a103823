"""Meter values as configured: every accepted measurand sent, no measurand the meter lacks
accepted, and StopTransaction's transactionData (OCPP 1.6 section 3.16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID
from tests.ocpp16.helpers import call_index, mark
from tests.ocpp16.test_tc_071_clock_aligned import ENERGY, POWER, configure
from tests.ocpp16.test_unlock_connector import start_charging

MEASURAND_KEYS = (
    "MeterValuesSampledData",
    "MeterValuesAlignedData",
    "StopTxnSampledData",
    "StopTxnAlignedData",
)


def measurands(meter_value: dict[str, Any]) -> list[str]:
    return [sampled["measurand"] for sampled in meter_value["sampledValue"]]


def contexts(meter_value: dict[str, Any]) -> set[str]:
    return {sampled["context"] for sampled in meter_value["sampledValue"]}


def in_context(context: str) -> Callable[[dict[str, Any]], bool]:
    return lambda payload: contexts(payload["meterValue"][0]) == {context}


async def test_a_measurand_the_meter_does_not_measure_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    for key in MEASURAND_KEYS:
        for unmeasured in ("Frequency", "Voltage.L1", "Current.Import.N", "Temperature"):
            answer = await csms.change_configuration(CP_ID, key, f"{ENERGY},{unmeasured}")
            assert answer == {"status": "Rejected"}, (key, unmeasured)
    (config,) = (await csms.get_configuration(CP_ID, ["MeterValuesSampledData"]))[
        "configurationKey"
    ]
    assert config["value"] == ENERGY


async def test_the_phases_of_the_simulated_meter_are_sent_as_configured(
    station: Station, csms: CentralSystem
) -> None:
    """A bare measurand measured on each phase sends every phase (OCPP 1.6 3.16.3); a phased
    item sends that phase; the total power has no phase."""
    await configure(
        csms,
        MeterValueSampleInterval="1",
        MeterValuesSampledData=f"{POWER},Current.Import,Voltage.L2-N,{POWER}.L3",
    )
    await start_charging(station, csms)
    start = mark(csms)
    periodic = await csms.wait_for_call(CP_ID, "MeterValues", after=start)

    sampled = periodic.frame[3]["meterValue"][0]["sampledValue"]
    assert [(s["measurand"], s.get("phase"), s["value"], s["unit"]) for s in sampled] == [
        (POWER, None, "11000", "W"),  # the rig's vehicle, shared by three phases at 230 V
        ("Current.Import", "L1", "15.9", "A"),
        ("Current.Import", "L2", "15.9", "A"),
        ("Current.Import", "L3", "15.9", "A"),
        ("Voltage", "L2-N", "230", "V"),
        (POWER, "L3", "3666.7", "W"),
    ]


async def test_every_accepted_measurand_is_sampled_and_triggered(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, MeterValueSampleInterval="1", MeterValuesSampledData=f"{POWER},{ENERGY}")
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    periodic = await csms.wait_for_call(CP_ID, "MeterValues", after=start)
    assert periodic.frame[3]["transactionId"] == transaction_id
    (meter_value,) = periodic.frame[3]["meterValue"]
    assert measurands(meter_value) == [POWER, ENERGY]
    assert contexts(meter_value) == {"Sample.Periodic"}

    start = mark(csms)
    assert await csms.trigger_message(CP_ID, "MeterValues", connector_id=1) == {
        "status": "Accepted"
    }
    triggered = await csms.wait_for_call(
        CP_ID, "MeterValues", where=in_context("Trigger"), after=start
    )
    assert measurands(triggered.frame[3]["meterValue"][0]) == [POWER, ENERGY]


async def test_stop_transaction_carries_begin_samples_and_end(
    station: Station, csms: CentralSystem
) -> None:
    await configure(
        csms,
        MeterValueSampleInterval="1",
        ClockAlignedDataInterval="1",
        StopTxnSampledData=f"{ENERGY},{POWER}",
        StopTxnAlignedData=ENERGY,
    )
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    for context in ("Sample.Periodic", "Sample.Clock"):
        await csms.wait_for_call(CP_ID, "MeterValues", where=in_context(context), after=start)
    await csms.remote_stop(CP_ID, transaction_id)
    stop = csms.frames[await call_index(csms, "StopTransaction", after=start)].frame[3]

    data = stop["transactionData"]
    begin, *samples, end = data
    assert contexts(begin) == {"Transaction.Begin"}
    assert measurands(begin) == [ENERGY, POWER]
    assert contexts(end) == {"Transaction.End"}
    assert measurands(end) == [ENERGY, POWER]
    assert end["sampledValue"][0]["value"] == str(stop["meterStop"])
    assert end["sampledValue"][1]["value"] == "0"  # read after the contactor opened
    kept = {(context, tuple(measurands(s))) for s in samples for context in contexts(s)}
    assert ("Sample.Periodic", (ENERGY, POWER)) in kept
    assert ("Sample.Clock", (ENERGY,)) in kept
    energy = [int(s["sampledValue"][0]["value"]) for s in data]
    assert energy == sorted(energy)


async def test_without_stop_txn_measurands_stop_transaction_has_no_transaction_data(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, MeterValueSampleInterval="1", StopTxnSampledData="")
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    await csms.wait_for_call(CP_ID, "MeterValues", after=start)
    await csms.remote_stop(CP_ID, transaction_id)
    stop = csms.frames[await call_index(csms, "StopTransaction", after=start)].frame[3]
    assert "transactionData" not in stop
