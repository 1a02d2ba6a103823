"""A charging profile's limit reaches the vehicle: the duty the control pilot's pin really
carries follows the schedule, on time, and below 6 A the wave stops (SuspendedEVSE) until the
limit rises again (Charging)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from cp_pi.app import Station
from cp_pi.config import RigConfig
from cp_pi.core.pilot import duty_percent
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, StationFactory
from tests.ocpp16.helpers import mark, status_reached, until
from tests.ocpp16.test_smart_charging import profile
from tests.ocpp16.test_unlock_connector import start_charging

#: The pilot's PWM pin of connector 1 (GPIO18, PWM0).
PILOT_PIN = 18
#: A vehicle that asks for energy soon after the wave starts keeps the tests short.
QUICK_EV = RigConfig(lock_travel_time=0.02, contactor_delay=0.01, ev_delay=0.05)


@pytest.fixture
async def charging(make_station: StationFactory, csms: CentralSystem) -> AsyncIterator[Station]:
    async with make_station(rig=QUICK_EV) as station:
        await start_charging(station, csms)
        yield station


def pilot_value(station: Station) -> float:
    """What the PWM pin carries: the duty as a fraction, 1.0 for a steady +12 V (no wave)."""
    return float(station.pin_factory.pin(PILOT_PIN).state)


def wave_for(amps: float) -> float:
    duty = duty_percent(amps)
    assert duty is not None
    return duty / 100


def whole_second(seconds_from_now: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds_from_now)


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_period_change_reaches_the_pilot_duty_within_a_second(
    charging: Station, csms: CentralSystem
) -> None:
    station = charging
    connector = station.connectors[1]
    assert pilot_value(station) == pytest.approx(wave_for(32))  # cable and max_current: 32 A
    assert connector.state()["limit_source"] in ("cable", "config")

    # 16 A now, 10 A from the next whole second but one.
    change = whole_second(2)
    begin = change - timedelta(seconds=60)
    payload = profile(
        1, "TxDefaultProfile", [(0, 16), (60, 10)], start=None,
        schedule={"startSchedule": stamp(begin)},
    )  # fmt: skip
    answer = await csms.set_charging_profile(CP_ID, 1, payload)
    assert answer == {"status": "Accepted"}
    assert pilot_value(station) == pytest.approx(wave_for(16))  # at once, in the same turn
    state = connector.state()
    assert state["current_offered_a"] == 16.0
    assert state["limit_source"] == "TxDefaultProfile"

    await until(station, lambda: pilot_value(station) == pytest.approx(wave_for(10)), timeout=5)
    late = time.time() - change.timestamp()
    assert -0.05 < late < 1.0
    state = connector.state()
    assert state["current_offered_a"] == 10.0
    assert state["limit_source"] == "TxDefaultProfile"
    assert state["status"] == "Charging"
    # The pin went 32 A -> 16 A -> 10 A and nothing else: no stop on the way.
    values = [s.state for s in station.pin_factory.pin(PILOT_PIN).states]
    assert values[-2:] == [pytest.approx(wave_for(16)), pytest.approx(wave_for(10))]


async def test_below_6_a_the_wave_stops_and_charging_resumes_when_the_limit_rises(
    charging: Station, csms: CentralSystem
) -> None:
    station = charging
    connector = station.connectors[1]
    start = mark(csms)
    rises = whole_second(2)
    payload = profile(
        1, "TxDefaultProfile", [(0, 4), (60, 13)], start=None,
        schedule={"startSchedule": stamp(rises - timedelta(seconds=60))},
    )  # fmt: skip
    assert await csms.set_charging_profile(CP_ID, 1, payload) == {"status": "Accepted"}
    # Below 6 A no current can be offered: steady +12 V, and the contactor opens.
    assert pilot_value(station) == 1.0
    assert not connector.hardware.contactor_closed
    suspended = await status_reached(csms, "SuspendedEVSE", after=start)
    assert connector.state()["current_offered_a"] == 0.0
    assert connector.transaction is not None  # suspended, not stopped

    await until(station, lambda: pilot_value(station) == pytest.approx(wave_for(13)), timeout=5)
    assert time.time() - rises.timestamp() < 1.0
    await status_reached(csms, "Charging", after=suspended)
    assert connector.hardware.contactor_closed
    state = connector.state()
    assert state["current_offered_a"] == 13.0
    assert state["limit_source"] == "TxDefaultProfile"


async def test_a_cleared_profile_gives_back_the_cable_and_installation_limit(
    charging: Station, csms: CentralSystem
) -> None:
    station = charging
    cp_max = profile(1, "ChargePointMaxProfile", [(0, 20)])
    assert await csms.set_charging_profile(CP_ID, 0, cp_max) == {"status": "Accepted"}
    assert pilot_value(station) == pytest.approx(wave_for(20))
    assert station.connectors[1].state()["limit_source"] == "ChargePointMaxProfile"
    assert await csms.clear_charging_profile(CP_ID, id=1) == {"status": "Accepted"}
    assert pilot_value(station) == pytest.approx(wave_for(32))
    assert station.connectors[1].state()["limit_source"] in ("cable", "config")


async def test_the_cable_rating_is_smaller_than_the_profile_and_wins(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(rig=QUICK_EV) as station:
        start = mark(csms)
        assert station.rig is not None
        station.rig.plug(1, cable_rating=13)
        assert await csms.remote_start(CP_ID, "TAG1", 1) == {"status": "Accepted"}
        await status_reached(csms, "Charging", after=start)
        default = profile(1, "TxDefaultProfile", [(0, 20)])
        assert await csms.set_charging_profile(CP_ID, 1, default) == {"status": "Accepted"}
        state = station.connectors[1].state()
        assert state["current_offered_a"] == 13.0
        assert state["limit_source"] == "cable"
        assert pilot_value(station) == pytest.approx(wave_for(13))
        # The composite schedule says what the connector can offer: its cable's 13 A.
        answer = await csms.get_composite_schedule(CP_ID, 1, 60)
        limits = [p["limit"] for p in answer["chargingSchedule"]["chargingSchedulePeriod"]]
        assert limits == [13.0]
