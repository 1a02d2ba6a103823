"""OCTT 1.6 Reservation cases (TC_046 to TC_052), and what else section 5.13 asks: a new
ReserveNow with a known reservationId replaces it, a group shares a reservation, a fault or
Unavailable ends it, the link cut while the reserved tag is presented, a restart.

Every test plays its scenario against the real charge point over a websocket, on mock pins.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cp_pi.app import Station
from cp_pi.config import (
    ConnectorConfig,
    ContactorConfig,
    LockConfig,
    PilotConfig,
    PpConfig,
    RcdConfig,
)
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig, RigFault
from tests.conftest import CP_ID, FAST_LOCK, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_link import csms_outage
from tests.ocpp16.test_local_list import iso
from tests.ocpp16.test_octt_core import configure
from tests.ocpp16.test_residual_current import with_rcd

HOLDER = "HOLDER"
OTHER = "SOMEONE-ELSE"


def in_(seconds: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


async def reserved(
    csms: CentralSystem,
    reservation_id: int = 1,
    connector_id: int = 1,
    id_tag: str = HOLDER,
    *,
    seconds: float = 3600,
    parent: str | None = None,
    shown_on: int = 1,
) -> int:
    """ReserveNow, Accepted, until the connector it holds (``shown_on`` for connector 0)
    reports Reserved; the frame mark before it."""
    start = mark(csms)
    answer = await csms.reserve_now(
        CP_ID, reservation_id, connector_id, id_tag, in_(seconds), parent
    )
    assert answer == {"status": "Accepted"}
    await status_reached(csms, "Reserved", after=start, connector=connector_id or shown_on)
    return start


async def test_tc_046_1_only_the_reserved_tag_starts_on_the_reserved_connector(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await reserved(csms)
    assert station.connectors[1].state()["reservation"]["id_tag"] == HOLDER
    start = mark(csms)

    station.charger.swipe(1, OTHER)  # refused without asking the central system
    station.charger.swipe(1, HOLDER)
    authorize = await call_index(csms, "Authorize", after=start, idTag=HOLDER)
    preparing = await status_reached(csms, "Preparing", after=start)
    rig.plug(1)

    started = await call_index(csms, "StartTransaction", after=start, idTag=HOLDER)
    charging = await status_reached(csms, "Charging", after=start)
    assert authorize < preparing < started < charging
    assert csms.frames[started].frame[3]["reservationId"] == 1
    assert [c["idTag"] for c in calls(csms, "Authorize", after=start)] == [HOLDER]
    assert station.connectors[1].reservation is None  # the reservation ended with its start


async def test_tc_046_2_a_remote_start_for_the_reserved_tag_carries_the_reservation_id(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await reserved(csms, reservation_id=46)
    rig.plug(1)  # a cable alone does not take a reserved connector
    await until(station, lambda: station.connectors[1].hardware.cable_present)
    assert station.connectors[1].status()[0].value == "Reserved"
    start = mark(csms)

    assert await csms.remote_start(CP_ID, OTHER, 1) == {"status": "Rejected"}
    assert await csms.remote_start(CP_ID, HOLDER, 1) == {"status": "Accepted"}

    started = await call_index(csms, "StartTransaction", after=start, idTag=HOLDER)
    await status_reached(csms, "Charging", after=start)
    assert csms.frames[started].frame[3]["reservationId"] == 46


async def test_tc_047_a_reservation_not_used_expires_at_its_expiry_date(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    expiry = datetime.now(UTC) + timedelta(seconds=0.6)
    start = mark(csms)
    answer = await csms.reserve_now(CP_ID, 47, 1, HOLDER, iso(expiry))
    assert answer == {"status": "Accepted"}
    reserved_at = await status_reached(csms, "Reserved", after=start)

    available = await status_reached(csms, "Available", after=reserved_at)

    sent = datetime.fromisoformat(csms.frames[available].frame[3]["timestamp"])
    assert sent >= expiry.replace(microsecond=expiry.microsecond // 1000 * 1000)
    assert station.connectors[1].reservation is None
    start = mark(csms)
    rig.plug(1)  # another tag charges: the reservation is gone
    assert await csms.remote_start(CP_ID, OTHER, 1) == {"status": "Accepted"}
    started = await call_index(csms, "StartTransaction", after=start, idTag=OTHER)
    assert "reservationId" not in csms.frames[started].frame[3]


async def test_tc_048_1_a_faulted_connector_is_not_reserved(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=with_rcd()) as station:
        start = mark(csms)
        rig_of(station).set_fault(1, RigFault.RCD_TRIP)
        await status_reached(csms, "Faulted", after=start, error_code="GroundFailure")

        assert await csms.reserve_now(CP_ID, 1, 1, HOLDER, in_(60)) == {"status": "Faulted"}
        assert await csms.reserve_now(CP_ID, 2, 0, HOLDER, in_(60)) == {"status": "Faulted"}
        assert station.connectors[1].reservation is None


async def test_tc_048_2_an_occupied_connector_is_not_reserved(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    start = mark(csms)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)

    assert await csms.reserve_now(CP_ID, 1, 1, HOLDER, in_(60)) == {"status": "Occupied"}
    await reserved_elsewhere_is_occupied(station, csms)


async def reserved_elsewhere_is_occupied(station: Station, csms: CentralSystem) -> None:
    """The only connector is taken: a reservation for any connector is Occupied too."""
    assert await csms.reserve_now(CP_ID, 2, 0, HOLDER, in_(60)) == {"status": "Occupied"}
    assert station.connectors[1].reservation is None


async def test_tc_048_3_an_unavailable_connector_is_not_reserved(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    assert await csms.change_availability(CP_ID, 1, "Inoperative") == {"status": "Accepted"}
    await status_reached(csms, "Unavailable", after=start)

    assert await csms.reserve_now(CP_ID, 1, 1, HOLDER, in_(60)) == {"status": "Unavailable"}


async def test_reserve_now_for_a_connector_the_charge_point_has_not_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    assert await csms.reserve_now(CP_ID, 1, 7, HOLDER, in_(60)) == {"status": "Rejected"}
    assert await csms.reserve_now(CP_ID, 1, 1, HOLDER, in_(-60)) == {"status": "Rejected"}


async def test_tc_049_a_reservation_of_the_charge_point_keeps_a_connector_for_its_holder(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    answer = await csms.get_configuration(CP_ID, ["ReserveConnectorZeroSupported"])
    assert answer["configurationKey"] == [
        {"key": "ReserveConnectorZeroSupported", "readonly": True, "value": "true"}
    ]
    await reserved(csms, reservation_id=49, connector_id=0)
    rig.plug(1)
    start = mark(csms)

    assert await csms.remote_start(CP_ID, OTHER) == {"status": "Rejected"}
    assert await csms.remote_start(CP_ID, HOLDER) == {"status": "Accepted"}

    started = await call_index(csms, "StartTransaction", after=start, idTag=HOLDER)
    assert csms.frames[started].frame[3]["reservationId"] == 49
    assert csms.frames[started].frame[3]["connectorId"] == 1


async def test_tc_050_3_the_charge_point_unavailable_takes_no_reservation(
    station: Station, csms: CentralSystem
) -> None:
    assert await csms.change_availability(CP_ID, 0, "Inoperative") == {"status": "Accepted"}

    assert await csms.reserve_now(CP_ID, 1, 0, HOLDER, in_(60)) == {"status": "Unavailable"}
    assert await csms.reserve_now(CP_ID, 2, 1, HOLDER, in_(60)) == {"status": "Unavailable"}


async def test_tc_051_a_cancelled_reservation_frees_the_connector(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await reserved(csms, reservation_id=51)
    start = mark(csms)

    assert await csms.cancel_reservation(CP_ID, 51) == {"status": "Accepted"}

    await status_reached(csms, "Available", after=start)
    rig.plug(1)
    assert await csms.remote_start(CP_ID, OTHER, 1) == {"status": "Accepted"}
    started = await call_index(csms, "StartTransaction", after=start, idTag=OTHER)
    assert "reservationId" not in csms.frames[started].frame[3]


async def test_tc_052_cancelling_an_unknown_reservation_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    await reserved(csms, reservation_id=52)

    assert await csms.cancel_reservation(CP_ID, 53) == {"status": "Rejected"}

    reservation = station.connectors[1].reservation
    assert reservation is not None
    assert reservation.reservation_id == 52


async def test_a_reserve_now_with_a_known_reservation_id_replaces_it(
    station: Station, csms: CentralSystem
) -> None:
    await reserved(csms, reservation_id=5, id_tag="FIRST")

    assert await csms.reserve_now(CP_ID, 5, 1, "SECOND", in_(60)) == {"status": "Accepted"}
    assert await csms.reserve_now(CP_ID, 6, 1, "THIRD", in_(60)) == {"status": "Occupied"}

    assert station.connectors[1].state()["reservation"]["id_tag"] == "SECOND"
    assert station.store.reservations()[0][:4] == (5, 1, 1, "SECOND")
    assert len(station.store.reservations()) == 1


async def test_a_tag_of_the_reservation_s_group_may_use_it(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    csms.parent_id_tags = {"KID": "FAMILY", OTHER: "NEIGHBOURS"}
    await reserved(csms, reservation_id=8, parent="FAMILY")
    rig.plug(1)
    start = mark(csms)

    station.charger.swipe(1, OTHER)  # asked about (its group is unknown here), and refused
    await call_index(csms, "Authorize", after=start, idTag=OTHER)
    station.charger.swipe(1, "KID")

    started = await call_index(csms, "StartTransaction", after=start, idTag="KID")
    assert csms.frames[started].frame[3]["reservationId"] == 8
    assert [c["idTag"] for c in calls(csms, "StartTransaction")] == ["KID"]


async def test_a_fault_on_a_reserved_connector_ends_the_reservation(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=with_rcd()) as station:
        start = await reserved(csms)

        rig_of(station).set_fault(1, RigFault.RCD_TRIP)
        faulted = await status_reached(csms, "Faulted", after=start, error_code="GroundFailure")
        rig_of(station).set_fault(1, RigFault.NONE)

        await status_reached(csms, "Available", after=faulted)
        assert station.connectors[1].reservation is None
        assert station.store.reservations() == []


async def test_unavailable_on_a_reserved_connector_ends_the_reservation(
    station: Station, csms: CentralSystem
) -> None:
    start = await reserved(csms)

    assert await csms.change_availability(CP_ID, 1, "Inoperative") == {"status": "Accepted"}
    unavailable = await status_reached(csms, "Unavailable", after=start)
    assert await csms.change_availability(CP_ID, 1, "Operative") == {"status": "Accepted"}

    await status_reached(csms, "Available", after=unavailable)
    assert station.connectors[1].reservation is None
    assert await csms.cancel_reservation(CP_ID, 1) == {"status": "Rejected"}


async def test_offline_only_the_reserved_tag_starts_and_the_start_names_the_reservation(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthorizeOffline="true", AllowOfflineTxForUnknownId="true")
    await reserved(csms, reservation_id=12)
    rig.plug(1)
    await csms_outage(station, csms)

    station.charger.swipe(1, OTHER)
    station.charger.swipe(1, HOLDER)
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)

    tx = station.connectors[1].transaction
    assert tx is not None
    assert tx.id_tag == HOLDER
    start = mark(csms)
    await csms.start()
    started = await call_index(csms, "StartTransaction", after=start, idTag=HOLDER)
    assert csms.frames[started].frame[3]["reservationId"] == 12


async def test_trigger_message_reports_a_reserved_connector(
    station: Station, csms: CentralSystem
) -> None:
    await reserved(csms)
    start = mark(csms)

    answer = await csms.trigger_message(CP_ID, "StatusNotification", 1)

    assert answer == {"status": "Accepted"}
    await status_reached(csms, "Reserved", after=start)


async def test_reservations_survive_a_restart_and_expired_ones_are_dropped(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station():
        await reserved(csms, reservation_id=2)
    start = mark(csms)

    async with make_station() as station:
        await status_reached(csms, "Reserved", after=start)
        reservation = station.connectors[1].reservation
        assert reservation is not None
        assert (reservation.reservation_id, reservation.id_tag) == (2, HOLDER)
        rig_of(station).plug(1)
        assert await csms.remote_start(CP_ID, OTHER, 1) == {"status": "Rejected"}
        rig_of(station).unplug(1)
        # Replaced by one that expires while the charge point is off.
        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        assert await csms.reserve_now(CP_ID, 2, 1, HOLDER, iso(soon)) == {"status": "Accepted"}
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()))
    start = mark(csms)

    async with make_station() as station:
        await status_reached(csms, "Available", after=start)
        assert station.connectors[1].reservation is None
        assert station.store.reservations() == []


def two_connectors() -> list[ConnectorConfig]:
    """Connector 2 with pins of its own (none of the first connector's, nor the ADC's or UART's)."""
    second = ConnectorConfig(
        proximity_pin=5,
        lock=LockConfig(**FAST_LOCK, lock_pin=6, unlock_pin=12, feedback_pin=19),
        contactor=ContactorConfig(pin=20, feedback_pin=21),
        pilot=PilotConfig(pwm_pin=13, high_channel=3, low_channel=4),
        pp=PpConfig(channel=5),
        rcd=RcdConfig(trip_pin=4, test_pin=7),
    )
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK)), second]


async def test_tc_049_with_two_connectors_one_is_kept_free_and_its_holder_charges_on_either(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=two_connectors()) as station:
        rig = rig_of(station)
        await reserved(csms, reservation_id=21, connector_id=0, shown_on=2)  # holds 2 ...
        held = station.connectors[2].reservation
        assert held is not None
        assert held.reservation_id == 21
        assert station.connectors[1].status()[0].value == "Available"
        rig.plug(1)
        start = mark(csms)
        # ... and its holder may use the other one: the reservation ends, connector 2 is free.
        assert await csms.remote_start(CP_ID, HOLDER, 1) == {"status": "Accepted"}
        started = await call_index(csms, "StartTransaction", after=start, idTag=HOLDER)
        assert csms.frames[started].frame[3]["reservationId"] == 21
        await status_reached(csms, "Available", after=start, connector=2)

        await reserved(csms, reservation_id=22, connector_id=0, id_tag="SECOND", shown_on=2)
        assert await csms.reserve_now(CP_ID, 23, 0, "THIRD", in_(60)) == {"status": "Occupied"}
        rig.plug(2)
        assert await csms.remote_start(CP_ID, OTHER) == {"status": "Rejected"}
        start = mark(csms)
        assert await csms.remote_start(CP_ID, "SECOND") == {"status": "Accepted"}
        started = await call_index(csms, "StartTransaction", after=start, idTag="SECOND")
        assert csms.frames[started].frame[3]["reservationId"] == 22
        assert csms.frames[started].frame[3]["connectorId"] == 2
