"""The charge point's time: taken from the central system when the system clock is not
synchronised (OCPP 1.6, 4.2 and 4.6), and never going backwards whatever the system clock does."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cp_pi.app import running_station
from cp_pi.csms.server import CentralSystem
from cp_pi.station.clock import Clock
from tests.conftest import CP_ID, fast_settings
from tests.ocpp16.helpers import calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging

TEN_YEARS = 10 * 365 * 24 * 3600.0


class SystemClock:
    """A system clock that can be stepped, as NTP or an operator steps a real one."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def __call__(self) -> float:
        return time.time() + self.shift


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def test_a_clock_stepped_backwards_does_not_go_backwards() -> None:
    wall, monotonic = [1_000_000.0], [50.0]
    clock = Clock(wall=lambda: wall[0], monotonic=lambda: monotonic[0], synchronised=lambda: True)
    before = clock.now()
    wall[0] -= 3600  # stepped back an hour ...
    monotonic[0] += 2  # ... while two seconds passed
    after = clock.now()
    assert after - before == timedelta(seconds=2)
    wall[0] += 3600 + 10  # the wall clock catches up and passes: followed again
    monotonic[0] += 1
    assert clock.now() == datetime.fromtimestamp(1_000_010.0, UTC)


def test_an_unsynchronised_clock_takes_the_central_systems_time_and_a_synchronised_one_not() -> (
    None
):
    synchronised = [False]
    clock = Clock(wall=lambda: 0.0, monotonic=lambda: 0.0, synchronised=lambda: synchronised[0])
    clock.adopt("2030-01-02T03:04:05.000Z")
    assert clock.timestamp() == "2030-01-02T03:04:05.000Z"
    synchronised[0] = True
    clock.adopt("2040-01-01T00:00:00Z")
    assert clock.timestamp() == "2030-01-02T03:04:05.000Z"
    clock.adopt("not a time")  # logged and ignored
    assert clock.timestamp() == "2030-01-02T03:04:05.000Z"


async def test_a_clock_ten_years_behind_and_unsynchronised_reports_the_central_systems_time(
    tmp_path: Path, csms: CentralSystem
) -> None:
    clock = Clock(wall=SystemClock(-TEN_YEARS), synchronised=lambda: False)
    settings = fast_settings(tmp_path / "data", csms.url)
    async with running_station(settings, response_timeout=5, clock=clock):
        await status_reached(csms, "Available", after=0)
    boot_answer = next(r for r in csms.frames if r.direction == "tx" and r.frame[0] == 3)
    told = parse(boot_answer.frame[2]["currentTime"])
    for status in calls(csms, "StatusNotification"):
        assert abs(parse(status["timestamp"]) - told) < timedelta(seconds=30)


async def test_a_clock_stepped_back_mid_charge_never_stops_before_it_started(
    tmp_path: Path, csms: CentralSystem
) -> None:
    system = SystemClock()
    clock = Clock(wall=system, synchronised=lambda: True)
    settings = fast_settings(tmp_path / "data", csms.url)
    async with running_station(settings, response_timeout=5, clock=clock) as station:
        await status_reached(csms, "Available", after=0)
        transaction_id = await start_charging(station, csms)
        system.shift = -3600.0  # NTP steps the clock back an hour
        start = mark(csms)
        await csms.remote_stop(CP_ID, transaction_id)
        stop = await csms.wait_for_call(CP_ID, "StopTransaction", after=start)
        await status_reached(csms, "Finishing", after=start)
    started = calls(csms, "StartTransaction")[0]["timestamp"]
    assert parse(stop.frame[3]["timestamp"]) >= parse(started)
    # and every later message keeps the order too
    later = [parse(p["timestamp"]) for p in calls(csms, "StatusNotification", after=start)]
    assert later
    assert all(moment >= parse(started) for moment in later)


async def test_a_heartbeat_answer_sets_the_time_too(tmp_path: Path, csms: CentralSystem) -> None:
    synchronised = [True]  # at boot; then NTP is lost and the clock drifts ten years away
    system = SystemClock()
    clock = Clock(wall=system, synchronised=lambda: synchronised[0])
    settings = fast_settings(tmp_path / "data", csms.url)
    async with running_station(settings, response_timeout=5, clock=clock):
        await status_reached(csms, "Available", after=0)
        synchronised[0], system.shift = False, -TEN_YEARS
        start = mark(csms)
        await csms.change_configuration(CP_ID, "HeartbeatInterval", "1")
        heartbeat = await csms.wait_for_call(CP_ID, "Heartbeat", after=start)
        answered = mark(csms)
        await csms.wait_for_call(CP_ID, "Heartbeat", after=answered)  # the first was heard
        await csms.trigger_message(CP_ID, "StatusNotification", 1)
        status = await csms.wait_for_call(CP_ID, "StatusNotification", after=answered)
    told = next(
        r.frame[2]["currentTime"]
        for r in csms.frames
        if r.direction == "tx" and r.frame[:2] == [3, heartbeat.frame[1]]
    )
    assert abs(parse(status.frame[3]["timestamp"]) - parse(told)) < timedelta(seconds=30)
