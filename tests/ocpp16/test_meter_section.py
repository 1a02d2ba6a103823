"""The connector's meter as configured: meterStart and meterStop are the register at that moment,
however long ago the meter last polled; a connector without a meter charges at 0 Wh."""

from __future__ import annotations

import asyncio

from cp_pi.app import Station
from cp_pi.config import ConnectorConfig, LockConfig, MeterConfig, MeterKind, RigConfig
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, FAST_LOCK, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, mark, status_reached
from tests.ocpp16.test_tc_071_clock_aligned import POWER
from tests.ocpp16.test_unlock_connector import start_charging

#: 1 kWh per second: a few milliseconds of charging move the register.
FAST_RIG = RigConfig(power_w=3_600_000, lock_travel_time=0.02, contactor_delay=0.01)


def with_meter(meter: MeterConfig) -> list[ConnectorConfig]:
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), meter=meter)]


async def charge_and_stop(station: Station, csms: CentralSystem) -> tuple[int, int]:
    """A transaction that moves the register; its meterStart and meterStop."""
    start = mark(csms)
    transaction_id = await start_charging(station, csms)
    started = csms.frames[await call_index(csms, "StartTransaction", after=start)].frame[3]
    await asyncio.sleep(0.05)  # energy flows
    await csms.remote_stop(CP_ID, transaction_id)
    stopped = csms.frames[await call_index(csms, "StopTransaction", after=start)].frame[3]
    return started["meterStart"], stopped["meterStop"]


async def test_meter_start_and_stop_are_read_at_that_moment(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    # Polled once at start-up, then not for a minute: only the refresh reads it meanwhile.
    connectors = with_meter(MeterConfig(kind=MeterKind.SIMULATED, poll_interval=60))
    async with make_station(connectors=connectors, rig=FAST_RIG) as station:
        rig = rig_of(station)
        first_start, first_stop = await charge_and_stop(station, csms)
        register = rig.meter(1).read_wh()  # a meter of its own: read now
        unplugged = mark(csms)
        rig.unplug(1)
        await status_reached(csms, "Available", after=unplugged)
        second_start, _ = await charge_and_stop(station, csms)

    assert first_start == 0
    assert first_stop == register >= 0.045 * FAST_RIG.power_w / 3600
    assert second_start == first_stop


async def test_a_connector_without_a_meter_charges_at_zero_wh(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    connectors = with_meter(MeterConfig(kind=MeterKind.NONE))
    async with make_station(connectors=connectors, rig=FAST_RIG) as station:
        refused = await csms.change_configuration(CP_ID, "MeterValuesSampledData", POWER)
        assert await charge_and_stop(station, csms) == (0, 0)

    assert refused == {"status": "Rejected"}
