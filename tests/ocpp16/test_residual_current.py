"""The residual-current monitor over OCPP: a trip ends the transaction and the connector reports
Faulted / GroundFailure until the module is healthy and the cable removed; a failed self-test
starts nothing."""

from __future__ import annotations

from cp_pi.config import ConnectorConfig, LockConfig, RcdConfig, RigConfig
from cp_pi.core.reading import ConnectorReading
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.conftest import FAST_LOCK, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until

OWNER = "OWNER-1"
CONTACTOR_PIN, TRIP_PIN, TEST_PIN = 24, 26, 16


def with_rcd(test_timeout: float = 0.2) -> list[ConnectorConfig]:
    rcd = RcdConfig(trip_pin=TRIP_PIN, test_pin=TEST_PIN, test_timeout=test_timeout)
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), rcd=rcd)]


async def test_a_trip_while_charging_ends_the_transaction_and_reports_ground_failure(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=with_rcd()) as station:
        rig = rig_of(station)
        start = mark(csms)
        rig.plug(1)
        await status_reached(csms, "Preparing", after=start)
        station.charger.swipe(1, OWNER)
        await status_reached(csms, "Charging", after=start)
        contactor = station.pin_factory.pin(CONTACTOR_PIN)
        assert len(station.pin_factory.pin(TEST_PIN).states) == 3  # tested once: low, high, low

        rig.set_fault(1, RigFault.RCD_TRIP)
        assert not contactor.state  # opened in the trip pin's own event

        await call_index(csms, "StopTransaction", after=start, reason="Other")
        faulted = await status_reached(csms, "Faulted", after=start, error_code="GroundFailure")
        await until(station, lambda: not rig.lock_engaged(1))  # the cable is given back

        rig.set_fault(1, RigFault.NONE)  # repaired: still Faulted while the same cable is in
        hardware = station.connectors[1].hardware
        assert hardware.reading() is ConnectorReading.RCD_TRIPPED
        assert not (await hardware.close_contactor()).ok
        rig.unplug(1)
        await status_reached(csms, "Available", after=faulted)
        assert [n["status"] for n in calls(csms, "StatusNotification", after=faulted + 1)] == [
            "Available"
        ]
        assert len(calls(csms, "StartTransaction", after=start)) == 1


async def test_a_failed_self_test_starts_no_transaction(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    # The rig's module answers its test input after contactor_delay: too late for 5 ms.
    slow_module = RigConfig(lock_travel_time=0.02, contactor_delay=0.05)
    async with make_station(connectors=with_rcd(0.005), rig=slow_module) as station:
        rig = rig_of(station)
        start = mark(csms)
        rig.plug(1)
        await status_reached(csms, "Preparing", after=start)

        station.charger.swipe(1, OWNER)

        await status_reached(csms, "Faulted", after=start, error_code="GroundFailure")
        assert calls(csms, "StartTransaction", after=start) == []
        assert station.connectors[1].transaction is None
        assert all(not change.state for change in station.pin_factory.pin(CONTACTOR_PIN).states)
