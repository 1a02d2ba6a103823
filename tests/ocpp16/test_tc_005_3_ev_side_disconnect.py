"""TC_005_3: the cable leaves the EV with StopTransactionOnEVSideDisconnect = false; the
transaction is suspended, not stopped, until the central system stops it."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_tc_071_clock_aligned import configure
from tests.ocpp16.test_unlock_connector import start_charging


async def test_tc_005_3_ev_side_disconnect_suspends_and_says_why(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(
        csms,
        StopTransactionOnEVSideDisconnect="false",
        UnlockConnectorOnEVSideDisconnect="false",
    )
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    rig.unplug(1)

    suspended = csms.frames[await status_reached(csms, "SuspendedEV", after=start)].frame[3]
    assert suspended["info"] == "EV side disconnected"
    connector = station.connectors[1]
    assert not connector.hardware.contactor_closed
    assert rig.lock_engaged(1)
    assert connector.transaction is not None
    assert calls(csms, "StopTransaction", after=start) == []

    assert (await csms.remote_stop(CP_ID, transaction_id))["status"] == "Accepted"
    await call_index(csms, "StopTransaction", after=start, reason="Remote")
    available = csms.frames[await status_reached(csms, "Available", after=start)].frame[3]
    assert "info" not in available
