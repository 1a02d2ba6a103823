"""TC_069: a transaction started by one tag is stopped by another tag of its group (the same
parentIdTag); TC_068: a tag of no group is not even asked about."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until

GROUPS = {"TAG-A": "FAMILY", "TAG-B": "FAMILY", "TAG-C": "NEIGHBOURS"}


async def charging_for(station: Station, csms: CentralSystem, id_tag: str) -> int:
    """Plug, RemoteStartTransaction for ``id_tag``, until StartTransaction is answered."""
    rig = rig_of(station)
    start = mark(csms)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)
    assert (await csms.remote_start(CP_ID, id_tag, connector_id=1))["status"] == "Accepted"
    await status_reached(csms, "Charging", after=start)

    def answered() -> bool:
        tx = station.connectors[1].transaction
        return tx is not None and tx.transaction_id is not None

    await until(station, answered)
    return start


async def test_tc_069_another_tag_with_the_same_parent_stops_the_transaction(
    station: Station, csms: CentralSystem
) -> None:
    csms.parent_id_tags = GROUPS
    await charging_for(station, csms, "TAG-A")
    start = mark(csms)

    station.charger.swipe(1, "TAG-C")  # another group: asked about, and refused
    await call_index(csms, "Authorize", after=start, idTag="TAG-C")
    station.charger.swipe(1, "TAG-B")

    authorize = await call_index(csms, "Authorize", after=start, idTag="TAG-B")
    stop = await call_index(csms, "StopTransaction", after=start)
    await status_reached(csms, "Finishing", after=start)
    assert authorize < stop
    assert csms.frames[stop].frame[3]["idTag"] == "TAG-B"
    assert len(calls(csms, "StopTransaction", after=start)) == 1
    assert station.connectors[1].transaction is None


async def test_tc_068_a_different_tag_is_not_asked_about_when_the_owner_has_no_group(
    station: Station, csms: CentralSystem
) -> None:
    csms.parent_id_tags = {"TAG-B": "FAMILY"}  # the owner, TAG-A, belongs to no group
    await charging_for(station, csms, "TAG-A")
    start = mark(csms)

    station.charger.swipe(1, "TAG-B")
    station.charger.swipe(1, "TAG-A")

    stop = await call_index(csms, "StopTransaction", after=start)
    await status_reached(csms, "Finishing", after=start)
    assert csms.frames[stop].frame[3]["idTag"] == "TAG-A"
    assert calls(csms, "Authorize", after=start) == []
