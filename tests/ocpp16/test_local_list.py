"""OCTT 1.6 Local Auth List Management cases (TC_008, TC_042, TC_043), and how the list
authorizes: before the cache and the central system, offline, after a restart.

Every test plays its scenario against the real charge point over a websocket; the list lives
in the station's real SQLite store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cp_pi.app import Station
from cp_pi.csms.server import CallErrorReceived, CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_link import csms_outage
from tests.ocpp16.test_octt_core import configure


def entry(id_tag: str, status: str | None = "Accepted", **info: str) -> dict[str, Any]:
    """A localAuthorizationList entry; status None removes the tag (Differential)."""
    if status is None:
        return {"idTag": id_tag}
    return {"idTag": id_tag, "idTagInfo": {"status": status, **info}}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def version(csms: CentralSystem) -> int:
    answer = await csms.get_local_list_version(CP_ID)
    listed: int = answer["listVersion"]
    return listed


async def test_tc_042_1_a_disabled_list_has_version_minus_one_and_takes_no_update(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthListEnabled="false")

    assert await version(csms) == -1
    answer = await csms.send_local_list(CP_ID, 1, [entry("TAG-A")])
    assert answer == {"status": "NotSupported"}  # TC_043_1's answer
    await configure(csms, LocalAuthListEnabled="true")
    assert await version(csms) == 0


async def test_tc_042_2_an_empty_full_list_is_version_0(
    station: Station, csms: CentralSystem
) -> None:
    assert await version(csms) == 0
    assert await csms.send_local_list(CP_ID, 1, [entry("TAG-A")]) == {"status": "Accepted"}
    assert await version(csms) == 1

    assert await csms.send_local_list(CP_ID, 1, None) == {"status": "Accepted"}

    assert await version(csms) == 0
    assert station.charger.state()["local_list_version"] == 0


TAGS = ("TAG-B", "TAG-C", "tag-d")  # idTags are case-insensitive


async def test_tc_043_full_then_differential_updates_change_who_is_authorized(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, LocalPreAuthorize="true", AuthorizationCacheEnabled="false")
    full = [entry("TAG-A"), entry("TAG-B"), entry("TAG-C", "Blocked")]
    assert await csms.send_local_list(CP_ID, 1, full) == {"status": "Accepted"}
    differential = [entry("TAG-A", None), entry("TAG-C"), entry("TAG-D")]
    answer = await csms.send_local_list(CP_ID, 2, differential, "Differential")

    assert answer == {"status": "Accepted"}
    assert await version(csms) == 2
    local_list = station.charger.local_list
    now = datetime.now(UTC)
    assert local_list.lookup("TAG-A", now=now) is None
    statuses = {tag: (local_list.lookup(tag, now=now) or {}).get("status") for tag in TAGS}
    assert statuses == dict.fromkeys(TAGS, "Accepted")
    assert local_list.size == 3


async def test_tc_008_a_listed_tag_starts_without_asking_the_central_system(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalPreAuthorize="true", AuthorizationCacheEnabled="false")
    assert await csms.send_local_list(CP_ID, 1, [entry("TAG-L")]) == {"status": "Accepted"}
    start = mark(csms)

    station.charger.swipe(1, "TAG-L")
    preparing = await status_reached(csms, "Preparing", after=start)
    rig.plug(1)

    started = await call_index(csms, "StartTransaction", after=start, idTag="TAG-L")
    charging = await status_reached(csms, "Charging", after=start)
    assert preparing < started < charging
    assert calls(csms, "Authorize", after=start) == []


async def test_tc_043_2_a_differential_update_must_come_after_the_stored_version(
    station: Station, csms: CentralSystem
) -> None:
    assert await csms.send_local_list(CP_ID, 2, [entry("TAG-A")]) == {"status": "Accepted"}
    assert await version(csms) == 2
    answer = await csms.send_local_list(CP_ID, 5, [entry("TAG-B")], "Differential")
    assert answer == {"status": "Accepted"}
    assert await version(csms) == 5

    for stale in (5, 3):
        answer = await csms.send_local_list(CP_ID, stale, [entry("TAG-C")], "Differential")
        assert answer == {"status": "VersionMismatch"}

    assert await version(csms) == 5
    assert station.charger.local_list.lookup("TAG-C", now=datetime.now(UTC)) is None


async def test_tc_043_3_an_update_the_store_cannot_write_fails_and_the_old_list_stays(
    station: Station, csms: CentralSystem
) -> None:
    assert await csms.send_local_list(CP_ID, 1, [entry("TAG-A")]) == {"status": "Accepted"}
    # SQLite refuses every write from now on, as on a filesystem gone read-only.
    station.store._db.execute("PRAGMA query_only = ON")

    answer = await csms.send_local_list(CP_ID, 2, [entry("TAG-B"), entry("TAG-C")])

    assert answer == {"status": "Failed"}
    assert await version(csms) == 1
    now = datetime.now(UTC)
    assert station.charger.local_list.lookup("TAG-A", now=now) is not None
    assert station.charger.local_list.lookup("TAG-B", now=now) is None


async def test_an_update_longer_than_send_local_list_max_length_is_an_occurrence_violation(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.get_configuration(CP_ID, ["SendLocalListMaxLength"])
    (key,) = answer["configurationKey"]
    limit = int(key["value"])
    assert key["readonly"] is True

    with pytest.raises(CallErrorReceived) as refused:
        await csms.send_local_list(CP_ID, 1, [entry(f"T{i}") for i in range(limit + 1)])

    assert refused.value.code == "OccurenceConstraintViolation"
    assert await version(csms) == 0
    answer = await csms.send_local_list(CP_ID, 1, [entry(f"T{i}") for i in range(limit)])
    assert answer == {"status": "Accepted"}


async def test_offline_the_list_decides_for_its_tags_accepted_or_not(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthorizeOffline="true", AllowOfflineTxForUnknownId="true")
    past = iso(datetime.now(UTC) - timedelta(hours=1))
    listed = [entry("GOOD"), entry("BAD", "Blocked"), entry("OLD", "Accepted", expiryDate=past)]
    assert await csms.send_local_list(CP_ID, 1, listed) == {"status": "Accepted"}
    rig.plug(1)
    await csms_outage(station, csms)

    station.charger.swipe(1, "BAD")  # listed, Blocked: refused though unknown tags may charge
    station.charger.swipe(1, "OLD")  # listed, expired: refused
    station.charger.swipe(1, "GOOD")
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)

    tx = station.connectors[1].transaction
    assert tx is not None
    assert tx.id_tag == "GOOD"
    start = mark(csms)
    await csms.start()
    await call_index(csms, "StartTransaction", after=start, idTag="GOOD")
    assert [c["idTag"] for c in calls(csms, "StartTransaction")] == ["GOOD"]


async def test_the_cache_never_overrides_the_list_and_clear_cache_leaves_it(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthorizeOffline="true", AllowOfflineTxForUnknownId="false")
    assert await csms.send_local_list(CP_ID, 3, [entry("TAG-L")]) == {"status": "Accepted"}
    csms.tag_statuses["TAG-L"] = "Blocked"  # the central system's word, online, wins
    rig.plug(1)
    start = mark(csms)
    station.charger.swipe(1, "TAG-L")
    authorize = await csms.wait_for_call(CP_ID, "Authorize", after=start)
    await csms.journal.wait_for(
        lambda r: r.direction == "tx" and r.frame[:2] == [3, authorize.frame[1]],
        after=start,
        timeout=5,
        what="the Authorize answer",
    )
    assert station.connectors[1].transaction is None
    assert await csms.clear_cache(CP_ID) == {"status": "Accepted"}
    assert await version(csms) == 3

    await csms_outage(station, csms)
    station.charger.swipe(1, "TAG-L")  # offline the list still says Accepted

    await until(station, lambda: station.connectors[1].hardware.contactor_closed)
    tx = station.connectors[1].transaction
    assert tx is not None
    assert tx.id_tag == "TAG-L"


async def test_tc_069_with_the_list_a_tag_of_the_same_group_stops_the_transaction_offline(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthorizeOffline="true")
    family = [
        entry("TAG-A", parentIdTag="FAMILY"),
        entry("TAG-B", parentIdTag="FAMILY"),
        entry("TAG-C", parentIdTag="NEIGHBOURS"),
    ]
    assert await csms.send_local_list(CP_ID, 1, family) == {"status": "Accepted"}
    rig.plug(1)
    await csms_outage(station, csms)
    station.charger.swipe(1, "TAG-A")
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)

    station.charger.swipe(1, "TAG-C")  # another group: the transaction goes on
    station.charger.swipe(1, "TAG-B")

    await until(station, lambda: station.connectors[1].transaction is None)
    start = mark(csms)
    await csms.start()
    stop = await call_index(csms, "StopTransaction", after=start, reason="Local")
    assert csms.frames[stop].frame[3]["idTag"] == "TAG-B"
    assert calls(csms, "Authorize") == []


async def test_the_list_and_its_enabled_key_survive_a_restart(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station():
        await csms.send_local_list(CP_ID, 7, [entry("TAG-A", parentIdTag="P")])
        await configure(csms, LocalAuthListEnabled="false")

    async with make_station() as station:
        assert await version(csms) == -1
        await configure(csms, LocalAuthListEnabled="true")
        assert await version(csms) == 7
        info = station.charger.local_list.lookup("TAG-A", now=datetime.now(UTC))
        assert info == {"status": "Accepted", "parentIdTag": "P"}
        rig_of(station).plug(1)
        start = mark(csms)
        await configure(csms, LocalPreAuthorize="true")
        station.charger.swipe(1, "TAG-A")
        await call_index(csms, "StartTransaction", after=start, idTag="TAG-A")
        assert calls(csms, "Authorize", after=start) == []
