"""UnlockConnector end to end, named after the OCPP 1.6 compliance cases it covers."""

from __future__ import annotations

import asyncio

import pytest

from cp_pi.app import Station
from cp_pi.config import ConnectorConfig, LockConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig, RigFault
from tests.conftest import CP_ID, StationFactory, fixed_cable, rig_of
from tests.hardware.pins import time_of_first
from tests.ocpp16.helpers import answer_index, call_index, calls, mark, status_reached

TAG = "TAG-1"
LOCK_PIN, UNLOCK_PIN, CONTACTOR_PIN = 22, 23, 24


async def start_charging(station: Station, csms: CentralSystem) -> int:
    """Plug, remote start, wait for Charging; return the transaction id."""
    start = mark(csms)
    rig = rig_of(station)
    rig.plug(1)
    answer = await csms.remote_start(CP_ID, TAG, connector_id=1)
    assert answer["status"] == "Accepted"
    await status_reached(csms, "Charging", after=start)
    tx = station.connectors[1].transaction
    assert tx is not None
    await csms.wait_for_call(CP_ID, "StartTransaction", after=start)
    return max(csms.transactions)


async def test_tc_017_1_unlock_without_cable_or_transaction(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    answer = await csms.unlock_connector(CP_ID, 1)
    assert answer == {"status": "Unlocked"}
    assert calls(csms, "StopTransaction", after=start) == []
    assert station.connectors[1].hardware.lock_drives == 0  # already open: no pulse


async def test_tc_017_2_fixed_cable_without_transaction_is_not_supported(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=fixed_cable()):
        assert await csms.unlock_connector(CP_ID, 1) == {"status": "NotSupported"}


async def test_tc_018_1_unlock_during_charging_finishes_the_transaction_first(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    contactor = station.pin_factory.pin(CONTACTOR_PIN)
    unlock_coil = station.pin_factory.pin(UNLOCK_PIN)
    contactor.clear_states()
    unlock_coil.clear_states()
    start = mark(csms)

    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}

    # conf, then StopTransaction(UnlockCommand), then Finishing
    conf = answer_index(csms, "UnlockConnector", after=start)
    stop = await call_index(csms, "StopTransaction", after=start, reason="UnlockCommand")
    finishing = await status_reached(csms, "Finishing", after=start)
    assert conf < stop < finishing
    stop_payload = csms.frames[stop].frame[3]
    assert stop_payload["transactionId"] == transaction_id
    assert stop_payload["meterStop"] >= csms.transactions[transaction_id].meter_start
    # contactor open before the lock moved
    opened_at = time_of_first(contactor, False)
    pulsed_at = time_of_first(unlock_coil, True)
    assert opened_at < pulsed_at
    assert not rig.lock_engaged(1)

    start = mark(csms)
    rig.unplug(1)
    await status_reached(csms, "Available", after=start)


async def test_tc_018_2_fixed_cable_during_charging_keeps_charging(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=fixed_cable()) as station:
        await start_charging(station, csms)
        start = mark(csms)
        assert await csms.unlock_connector(CP_ID, 1) == {"status": "NotSupported"}
        assert station.connectors[1].transaction is not None
        assert station.connectors[1].hardware.contactor_closed
        assert calls(csms, "StopTransaction", after=start) == []


@pytest.mark.parametrize("fault", [RigFault.LOCK_STUCK, RigFault.FEEDBACK_BROKEN])
async def test_tc_024_lock_failure_at_start_faults_without_a_transaction(
    station: Station, rig: BenchRig, csms: CentralSystem, fault: RigFault
) -> None:
    rig.set_fault(1, fault)
    start = mark(csms)
    rig.plug(1)
    assert (await csms.remote_start(CP_ID, TAG, connector_id=1))["status"] == "Accepted"
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert calls(csms, "StartTransaction", after=start) == []
    assert not station.connectors[1].hardware.contactor_closed


async def test_tc_030_stuck_lock_answers_unlock_failed_and_reports_lock_failure(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    rig.set_fault(1, RigFault.LOCK_STUCK)
    start = mark(csms)
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
    await call_index(csms, "StopTransaction", after=start, reason="UnlockCommand")
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert rig.lock_engaged(1)


@pytest.mark.parametrize("connector_id", [0, -1, 2, 99])
async def test_tc_031_unknown_connector_is_not_supported(
    station: Station, csms: CentralSystem, connector_id: int
) -> None:
    assert await csms.unlock_connector(CP_ID, connector_id) == {"status": "NotSupported"}


async def test_welded_contactor_keeps_the_lock_engaged(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    rig.set_fault(1, RigFault.CONTACTOR_WELDED)
    start = mark(csms)
    drives = station.connectors[1].hardware.lock_drives
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
    assert station.connectors[1].hardware.lock_drives == drives
    assert rig.lock_engaged(1)
    await call_index(csms, "StopTransaction", after=start, reason="UnlockCommand")


async def test_other_frames_are_answered_while_the_lock_drives(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    slow = [ConnectorConfig(lock=LockConfig(drive_time=1.0, pause=0.1, settle_time=0.5, retries=0))]
    async with make_station(connectors=slow) as station:
        await start_charging(station, csms)
        start = mark(csms)
        unlock = asyncio.create_task(csms.unlock_connector(CP_ID, 1))
        await csms.journal.wait_for(
            lambda r: r.direction == "tx" and r.is_call("UnlockConnector"),
            after=start,
            timeout=5,
            what="the UnlockConnector CALL",
        )
        answer = await csms.get_configuration(CP_ID, ["HeartbeatInterval"])
        assert not unlock.done()  # answered while the lock was still moving
        assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
        assert await unlock == {"status": "Unlocked"}
