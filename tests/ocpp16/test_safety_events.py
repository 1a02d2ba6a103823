"""Hardware failing mid-charge: energy stops first, the transaction ends, the fault shows."""

from __future__ import annotations

import asyncio

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig, RigFault
from tests.conftest import CP_ID
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging


async def test_a_lock_reading_open_while_charging_stops_energy_and_faults(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    start = mark(csms)

    rig.set_fault(1, RigFault.FEEDBACK_BROKEN)  # the lock reads open

    await call_index(csms, "StopTransaction", after=start, reason="Other")
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert not station.connectors[1].hardware.contactor_closed

    start = mark(csms)
    rig.set_fault(1, RigFault.NONE)  # the feedback is sane again
    await status_reached(csms, "Finishing", after=start)


async def test_a_lock_reading_open_during_a_flood_of_requests_opens_the_contactor_at_once(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    contactor = station.pin_factory.pin(station.settings.connectors[0].contactor.pin)
    assert contactor.state
    start = mark(csms)
    flood = [
        asyncio.create_task(csms.get_configuration(CP_ID, ["HeartbeatInterval"]))
        for _ in range(300)
    ]
    await asyncio.wait(flood, return_when=asyncio.FIRST_COMPLETED)  # the flood is being handled

    rig.set_fault(1, RigFault.FEEDBACK_BROKEN)  # the lock reads open; no await after
    contactor_low_within_the_event = not contactor.state
    still_queued = sum(not request.done() for request in flood)

    assert contactor_low_within_the_event
    assert still_queued > 0
    answers = await asyncio.gather(*flood)
    assert all(a["configurationKey"][0]["key"] == "HeartbeatInterval" for a in answers)
    await call_index(csms, "StopTransaction", after=start, reason="Other")
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert not contactor.state


async def test_a_contactor_falling_open_unbidden_while_charging_ends_the_transaction(
    station: Station, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    contactor_config = station.settings.connectors[0].contactor
    assert contactor_config.feedback_pin is not None
    start = mark(csms)

    station.pin_factory.pin(contactor_config.feedback_pin).drive_high()  # active low: aux open

    assert not station.pin_factory.pin(contactor_config.pin).state
    await call_index(csms, "StopTransaction", after=start, reason="Other")


async def test_a_rattling_plug_is_one_plug_and_does_not_end_a_charge(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    start = mark(csms)
    rig.bounce(1, present=True)
    await status_reached(csms, "Preparing", after=start)
    answer = await csms.remote_start(CP_ID, "TAG-1", connector_id=1)
    assert answer["status"] == "Accepted"
    transaction_id = await wait_transaction(csms, start)
    await status_reached(csms, "Charging", after=start)

    rig.bounce(1, present=True)  # rattles, stays in
    await csms.remote_stop(CP_ID, transaction_id)
    stop = await call_index(csms, "StopTransaction", after=start)
    assert csms.frames[stop].frame[3]["reason"] == "Remote"  # not EVDisconnected
    preparing = [
        p for p in calls(csms, "StatusNotification", after=start) if p["status"] == "Preparing"
    ]
    assert len(preparing) == 1


async def test_an_unreadable_lock_feedback_stops_the_charge_and_refuses_unlock(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    start = mark(csms)

    rig.set_fault(1, RigFault.FEEDBACK_UNREADABLE)

    await call_index(csms, "StopTransaction", after=start, reason="Other")
    await status_reached(csms, "Faulted", after=start, error_code="InternalError")
    assert not station.connectors[1].hardware.contactor_closed
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
    assert rig.lock_engaged(1)

    start = mark(csms)
    rig.set_fault(1, RigFault.NONE)
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}
    await status_reached(csms, "Finishing", after=start)


async def wait_transaction(csms: CentralSystem, after: int) -> int:
    await call_index(csms, "StartTransaction", after=after)
    return max(csms.transactions)
