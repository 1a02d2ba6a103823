"""TC_037_2 and TC_037_3: a transaction started offline whose idTag the central system refuses
once the link is back (StartTransaction.conf not Accepted)."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_link import csms_outage
from tests.ocpp16.test_tc_071_clock_aligned import configure

STRANGER = "STRANGER"


async def start_offline_with_a_refused_tag(station: Station, csms: CentralSystem) -> int:
    """Charge offline on a tag the central system will call Invalid; reconnect; return the mark."""
    await configure(csms, AllowOfflineTxForUnknownId="true")
    rig = rig_of(station)
    rig.plug(1)
    await csms_outage(station, csms)
    station.charger.swipe(1, STRANGER)
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)
    csms.authorized_tags = {"SOMEONE-ELSE"}
    start = mark(csms)
    await csms.start()
    await call_index(csms, "StartTransaction", after=start, idTag=STRANGER)
    return start


async def test_tc_037_2_invalid_id_stops_energy_and_keeps_the_transaction(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(
        csms,
        StopTransactionOnInvalidId="false",
        StopTransactionOnEVSideDisconnect="false",
    )
    start = await start_offline_with_a_refused_tag(station, csms)

    await status_reached(csms, "SuspendedEVSE", after=start)
    connector = station.connectors[1]
    assert not connector.hardware.contactor_closed
    assert connector.transaction is not None
    assert rig.lock_engaged(1)
    assert calls(csms, "StopTransaction", after=start) == []

    rig.unplug(1)  # a refused transaction ends with its cable, whatever the key says
    stop = await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
    assert csms.frames[stop].frame[3]["transactionId"] == max(csms.transactions)
    await status_reached(csms, "Available", after=start)


async def test_tc_037_3_invalid_id_stops_the_transaction_when_configured(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, StopTransactionOnInvalidId="true")
    start = await start_offline_with_a_refused_tag(station, csms)

    await call_index(csms, "StopTransaction", after=start, reason="DeAuthorized")
    await status_reached(csms, "Finishing", after=start)
    assert not station.connectors[1].hardware.contactor_closed
