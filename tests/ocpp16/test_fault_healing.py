"""Faults heal: a connector Faulted by its lock or a welded contactor comes back by itself once the
part works again, without an UnlockConnector from the central system."""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

import pytest

from cp_pi.config import ConnectorConfig, LockConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.conftest import CP_ID, FAST_LOCK, StationFactory, rig_of
from tests.hardware.pins import pulses
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_unlock_connector import UNLOCK_PIN, start_charging

#: The pauses between retries, for a quick suite: 0.05 s doubling to 0.4 s.
FIRST, LONGEST = 0.05, 0.4


def healing_lock(**changes: Any) -> list[ConnectorConfig]:
    lock = FAST_LOCK | {"heal_pause": FIRST, "heal_pause_max": LONGEST} | changes
    return [ConnectorConfig(lock=LockConfig(**lock))]


async def test_tc_024_a_lock_that_failed_at_start_heals_and_remote_starts_are_accepted_again(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=healing_lock()) as station:
        rig = rig_of(station)
        rig.set_fault(1, RigFault.LOCK_STUCK)
        start = mark(csms)
        rig.plug(1)
        assert (await csms.remote_start(CP_ID, "TAG-1", connector_id=1))["status"] == "Accepted"
        await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
        assert calls(csms, "StartTransaction", after=start) == []

        rig.set_fault(1, RigFault.NONE)  # repaired
        rig.unplug(1)

        await status_reached(csms, "Available", after=start)
        assert (await csms.remote_start(CP_ID, "TAG-2", connector_id=1))["status"] == "Accepted"
        rig.plug(1)
        await status_reached(csms, "Charging", after=start)
        await call_index(csms, "StartTransaction", after=start, idTag="TAG-2")


async def test_tc_030_a_stuck_lock_is_retried_with_growing_pauses_until_it_moves(
    make_station: StationFactory, csms: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cp_pi.charge_point")
    async with make_station(connectors=healing_lock(retries=0)) as station:
        await start_charging(station, csms)
        rig = rig_of(station)
        hardware = station.connectors[1].hardware
        unlock_coil = station.pin_factory.pin(UNLOCK_PIN)
        unlock_coil.clear_states()
        rig.set_fault(1, RigFault.LOCK_STUCK)
        start = mark(csms)
        assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
        await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
        drives = hardware.lock_drives

        await until(station, lambda: hardware.lock_drives >= drives + 4)

        # The UnlockConnector's pulse, then four retries: 0.05, 0.1, 0.2 and 0.4 s apart at least.
        seen = pulses(unlock_coil)[:5]
        gaps = [later[0] - earlier[1] for earlier, later in pairwise(seen)]
        assert len(gaps) == 4
        for gap, pause in zip(gaps, [FIRST, 2 * FIRST, 4 * FIRST, LONGEST], strict=True):
            assert gap >= pause
        assert gaps[0] < LONGEST  # growing from the first pause, not waiting the longest
        retries = [
            r.getMessage()
            for r in caplog.records
            if r.name == "cp_pi.charge_point" and "(retry" in r.getMessage()
        ]
        assert [m[m.index("(retry") :] for m in retries[:4]] == [
            f"(retry {n})" for n in range(1, 5)
        ]
        assert "LOCK_FAILED_TO_MOVE" in retries[0]
        assert rig.lock_engaged(1)

        rig.set_fault(1, RigFault.NONE)  # repaired: the next retry releases it

        await status_reached(csms, "Finishing", after=start)
        assert not rig.lock_engaged(1)
        transaction = await csms.remote_start(CP_ID, "TAG-2", connector_id=1)
        assert transaction["status"] == "Accepted"
        await call_index(csms, "StartTransaction", after=start, idTag="TAG-2")


async def test_a_cable_removed_is_a_moment_to_retry_at_once(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    patient = healing_lock(heal_pause=30, heal_pause_max=300)
    async with make_station(connectors=patient) as station:
        await start_charging(station, csms)
        rig = rig_of(station)
        rig.set_fault(1, RigFault.LOCK_STUCK)
        start = mark(csms)
        assert await csms.unlock_connector(CP_ID, 1) == {"status": "UnlockFailed"}
        await status_reached(csms, "Faulted", after=start, error_code="ConnectorLockFailure")
        rig.set_fault(1, RigFault.NONE)

        rig.unplug(1)  # long before the 30 s pause is over

        await status_reached(csms, "Available", after=start)
        assert not rig.lock_engaged(1)


async def test_a_welded_contactor_heals_when_its_aux_contact_opens(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=healing_lock()) as station:
        transaction_id = await start_charging(station, csms)
        rig = rig_of(station)
        hardware = station.connectors[1].hardware
        rig.set_fault(1, RigFault.CONTACTOR_WELDED)
        start = mark(csms)
        await csms.remote_stop(CP_ID, transaction_id)
        await status_reached(csms, "Faulted", after=start, error_code="PowerSwitchFailure")
        drives = hardware.lock_drives
        rig.unplug(1)
        await until(station, lambda: not hardware.cable_present)
        assert (await csms.remote_start(CP_ID, "TAG-2", connector_id=1))["status"] == "Rejected"
        assert hardware.lock_drives == drives  # never driven while the socket may be live

        rig.set_fault(1, RigFault.NONE)  # the aux contact reads open again

        await status_reached(csms, "Available", after=start)
        assert not rig.lock_engaged(1)  # and the lock healed as well
        assert (await csms.remote_start(CP_ID, "TAG-2", connector_id=1))["status"] == "Accepted"
