"""Hardware failing mid-charge: energy stops first, the transaction ends, the fault shows."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.conftest import CP_ID
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging


async def test_a_lock_reading_open_while_charging_stops_energy_and_faults(
    station: Station, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    assert station.rig is not None
    start = mark(csms)

    station.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)  # the lock reads open

    await call_index(csms, "StopTransaction", after=start, reason="Other")
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert not station.connectors[1].hardware.contactor_closed

    start = mark(csms)
    station.rig.set_fault(1, RigFault.NONE)  # the feedback is sane again
    await status_reached(csms, "Finishing", after=start)


async def test_a_rattling_plug_is_one_plug_and_does_not_end_a_charge(
    station: Station, csms: CentralSystem
) -> None:
    assert station.rig is not None
    start = mark(csms)
    station.rig.bounce(1, present=True)
    await status_reached(csms, "Preparing", after=start)
    answer = await csms.remote_start(CP_ID, "TAG-1", connector_id=1)
    assert answer["status"] == "Accepted"
    transaction_id = await wait_transaction(csms, start)
    await status_reached(csms, "Charging", after=start)

    station.rig.bounce(1, present=True)  # rattles, stays in
    await csms.remote_stop(CP_ID, transaction_id)
    stop = await call_index(csms, "StopTransaction", after=start)
    assert csms.frames[stop].frame[3]["reason"] == "Remote"  # not EVDisconnected
    preparing = [
        p for p in calls(csms, "StatusNotification", after=start) if p["status"] == "Preparing"
    ]
    assert len(preparing) == 1


async def test_an_unreadable_lock_feedback_stops_the_charge_and_refuses_unlock(
    station: Station, csms: CentralSystem
) -> None:
    await start_charging(station, csms)
    assert station.rig is not None
    start = mark(csms)

    station.rig.set_fault(1, RigFault.FEEDBACK_UNREADABLE)

    await call_index(csms, "StopTransaction", after=start, reason="Other")
    await status_reached(csms, "Faulted", after=start, error_code="InternalError")
    assert not station.connectors[1].hardware.contactor_closed
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
    assert station.rig.lock_engaged(1)

    start = mark(csms)
    station.rig.set_fault(1, RigFault.NONE)
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}
    await status_reached(csms, "Finishing", after=start)


async def wait_transaction(csms: CentralSystem, after: int) -> int:
    await call_index(csms, "StartTransaction", after=after)
    return max(csms.transactions)
