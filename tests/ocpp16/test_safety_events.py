"""Hardware failing mid-charge: energy stops first, the transaction ends, the fault shows."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.ocpp16.helpers import call_index, mark, status_reached
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
