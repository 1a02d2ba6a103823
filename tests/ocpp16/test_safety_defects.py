"""What an adversarial run found: an empty socket energised, local starts where remote ones are
refused, and cables left locked after a safety stop."""

from __future__ import annotations

import pytest

from cp_pi.app import Station
from cp_pi.config import ConnectorConfig, LockConfig, RigConfig
from cp_pi.core.reading import LockPosition
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig, RigFault
from tests.conftest import CP_ID, FAST_LOCK, StationFactory, rig_of
from tests.hardware.pins import high_time
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_unlock_connector import CONTACTOR_PIN, LOCK_PIN, UNLOCK_PIN

OWNER = "OWNER-1"


# -- an empty socket is never energised ----------------------------------------------------------


async def test_a_cable_pulled_while_the_lock_engages_starts_nothing(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    slow_lock = [ConnectorConfig(lock=LockConfig(**(FAST_LOCK | {"drive_time": 0.5})))]
    async with make_station(connectors=slow_lock) as station:
        rig = rig_of(station)
        start = mark(csms)
        rig.plug(1)
        await status_reached(csms, "Preparing", after=start)

        station.charger.swipe(1, OWNER)
        await until(station, lambda: rig.lock_engaged(1))
        assert station.pin_factory.pin(LOCK_PIN).state  # the drive goes on for 0.5 s
        rig.unplug(1)  # mid-drive: the latch engaged in what becomes an empty socket

        await status_reached(csms, "Available", after=start)
        assert not rig.lock_engaged(1)  # released before the socket was called Available
        assert calls(csms, "StartTransaction", after=start) == []
        assert station.connectors[1].transaction is None
        assert station.pin_factory.pin(CONTACTOR_PIN).states[-1].state is False
        assert all(not change.state for change in station.pin_factory.pin(CONTACTOR_PIN).states)


@pytest.mark.parametrize("stop_on_disconnect", ["true", "false"])
async def test_a_cable_pulled_while_the_contactor_closes_ends_the_transaction_at_once(
    make_station: StationFactory, csms: CentralSystem, stop_on_disconnect: str
) -> None:
    slow_aux = RigConfig(lock_travel_time=0.02, contactor_delay=0.5)
    # Without a pilot the contactor closes as the transaction starts, so the cable can be pulled
    # right between the output and its aux contact's confirmation.
    no_pilot = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), pilot=None)]
    async with make_station(rig=slow_aux, connectors=no_pilot) as station:
        rig = rig_of(station)
        await csms.change_configuration(
            CP_ID, "StopTransactionOnEVSideDisconnect", stop_on_disconnect
        )
        start = mark(csms)
        rig.plug(1)
        await status_reached(csms, "Preparing", after=start)
        contactor = station.pin_factory.pin(CONTACTOR_PIN)
        contactor.clear_states()

        station.charger.swipe(1, OWNER)
        await call_index(csms, "StartTransaction", after=start)  # sent once the contactor closes
        assert contactor.state
        rig.unplug(1)

        await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
        await status_reached(csms, "Available", after=start)
        assert len(calls(csms, "StartTransaction", after=start)) == 1
        assert len(calls(csms, "StopTransaction", after=start)) == 1
        assert high_time(contactor) < 0.5  # opened before its aux contact even confirmed closing
        assert not rig.lock_engaged(1)


# -- a local swipe obeys availability and faults, as RemoteStartTransaction does -----------------


@pytest.mark.parametrize("connector_id", [1, 0])
async def test_a_swipe_on_an_unavailable_connector_starts_nothing(
    station: Station, rig: BenchRig, csms: CentralSystem, connector_id: int
) -> None:
    start = mark(csms)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)
    answer = await csms.change_availability(CP_ID, connector_id, "Inoperative")
    assert answer == {"status": "Accepted"}
    await status_reached(csms, "Unavailable", after=start)
    assert (await csms.remote_start(CP_ID, "REMOTE", connector_id=1))["status"] == "Rejected"

    station.charger.swipe(1, "REFUSED")

    await csms.change_availability(CP_ID, connector_id, "Operative")
    station.charger.swipe(1, OWNER)
    await call_index(csms, "StartTransaction", after=start, idTag=OWNER)
    for action in ("Authorize", "StartTransaction"):
        assert all(p["idTag"] == OWNER for p in calls(csms, action, after=start))


async def test_a_swipe_on_a_faulted_connector_starts_nothing(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    rig.set_fault(1, RigFault.LOCK_STUCK)
    start = mark(csms)
    rig.plug(1)
    assert (await csms.remote_start(CP_ID, "FIRST", connector_id=1))["status"] == "Accepted"
    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    assert (await csms.remote_start(CP_ID, "REMOTE", connector_id=1))["status"] == "Rejected"
    drives = station.connectors[1].hardware.lock_drives

    station.charger.swipe(1, "REFUSED")

    await csms.get_configuration(CP_ID, ["HeartbeatInterval"])  # a round trip after the swipe
    assert calls(csms, "Authorize", after=start) == []
    assert calls(csms, "StartTransaction", after=start) == []
    assert station.connectors[1].hardware.lock_drives == drives


# -- after a safety stop, the owner's tag takes the cable back -----------------------------------


async def charge_with_owner_tag(station: Station, csms: CentralSystem) -> int:
    rig = rig_of(station)
    start = mark(csms)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)
    station.charger.swipe(1, OWNER)
    await status_reached(csms, "Charging", after=start)
    await until(station, lambda: station.connectors[1].transaction is not None)
    return start


async def safety_stop(station: Station, csms: CentralSystem, fault: RigFault) -> None:
    """Stop a charge by a broken feedback wire or a welded contactor, then repair it."""
    rig = rig_of(station)
    start = mark(csms)
    if fault is RigFault.FEEDBACK_BROKEN:
        rig.set_fault(1, fault)
        await call_index(csms, "StopTransaction", after=start, reason="Other")
        await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    else:
        rig.set_fault(1, fault)
        tx = station.connectors[1].transaction
        assert tx is not None
        assert tx.transaction_id is not None
        await csms.remote_stop(CP_ID, tx.transaction_id)
        await call_index(csms, "StopTransaction", after=start, reason="Remote")
        await status_reached(csms, "Faulted", after=start, error_code="PowerSwitchFailure")
    assert rig.lock_engaged(1)
    start = mark(csms)
    rig.set_fault(1, RigFault.NONE)
    await status_reached(csms, "Finishing", after=start)
    assert rig.lock_engaged(1)  # the cable stays with the charger until its owner is back


@pytest.mark.parametrize("fault", [RigFault.FEEDBACK_BROKEN, RigFault.CONTACTOR_WELDED])
async def test_after_a_safety_stop_the_owners_tag_releases_the_cable(
    station: Station, rig: BenchRig, csms: CentralSystem, fault: RigFault
) -> None:
    await charge_with_owner_tag(station, csms)
    await safety_stop(station, csms, fault)
    start = mark(csms)
    unlock_coil = station.pin_factory.pin(UNLOCK_PIN)
    unlock_coil.clear_states()

    station.charger.swipe(1, OWNER)

    await until(station, lambda: not rig.lock_engaged(1))
    assert any(change.state for change in unlock_coil.states)  # pulsed by the swipe
    rig.unplug(1)
    await status_reached(csms, "Available", after=start)
    assert calls(csms, "StartTransaction", after=start) == []
    assert calls(csms, "Authorize", after=start) == []


async def test_an_empty_socket_is_released_before_it_is_called_available(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await charge_with_owner_tag(station, csms)
    await safety_stop(station, csms, RigFault.FEEDBACK_BROKEN)
    start = mark(csms)

    rig.unplug(1)  # the cable leaves (the latch is simulated; a real one would hold it)

    await status_reached(csms, "Available", after=start)
    assert not rig.lock_engaged(1)
    assert station.connectors[1].hardware.lock_position is LockPosition.RELEASED


async def test_an_empty_socket_whose_lock_will_not_release_is_faulted_not_available(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await charge_with_owner_tag(station, csms)
    await safety_stop(station, csms, RigFault.FEEDBACK_BROKEN)
    rig.set_fault(1, RigFault.LOCK_STUCK)
    start = mark(csms)

    rig.unplug(1)

    await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
    statuses = [p["status"] for p in calls(csms, "StatusNotification", after=start)]
    assert "Available" not in statuses
    assert rig.lock_engaged(1)
