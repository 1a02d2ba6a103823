"""The outbox as the central system sees it: what a burst of requests puts on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cp_pi.app import running_station
from cp_pi.csms.server import CentralSystem
from cp_pi.station.clock import Clock
from tests.conftest import CP_ID, StationFactory, fast_settings
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging


async def test_a_burst_of_heartbeat_triggers_sends_one_heartbeat_not_a_backlog(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(response_timeout=1) as station:
        csms.ignore_next("Heartbeat")
        start = mark(csms)
        await csms.trigger_message(CP_ID, "Heartbeat")
        unanswered = await call_index(csms, "Heartbeat", after=start)
        # While that Heartbeat waits for an answer that never comes, the triggers pile up.
        for _ in range(20):
            assert (await csms.trigger_message(CP_ID, "Heartbeat")) == {"status": "Accepted"}
        await csms.trigger_message(CP_ID, "StatusNotification", connector_id=1)

        answered = await call_index(csms, "Heartbeat", after=unanswered + 1)
        await status_reached(csms, "Available", after=answered)
        assert len(calls(csms, "Heartbeat", after=start)) == 2
        assert station.charger.csms_connected


@dataclass
class Alarm:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimer:
    """The charge point's monotonic clock, moved by hand: a retry comes when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._alarms: list[Alarm] = []
        self._changed = asyncio.Event()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Alarm:
        alarm = Alarm(when, callback)
        self._alarms.append(alarm)
        self._changed.set()
        return alarm

    async def next_alarm(self) -> float:
        """Wait until something is waiting for the time to pass; how many seconds it waits."""
        while not (pending := [alarm for alarm in self._alarms if not alarm.cancelled]):
            self._changed.clear()
            await self._changed.wait()
        return min(alarm.when for alarm in pending) - self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for alarm in [alarm for alarm in self._alarms if alarm.when <= self.now]:
            self._alarms.remove(alarm)
            if not alarm.cancelled:
                alarm.callback()


async def test_a_refused_stop_is_sent_again_after_the_retry_interval_times_the_attempts(
    tmp_path: Path, csms: CentralSystem
) -> None:
    timer = ManualTimer()
    settings = fast_settings(tmp_path / "data", csms.url)
    async with running_station(settings, response_timeout=5, clock=Clock(timer=timer)) as station:
        await status_reached(csms, "Available", after=0)
        await csms.change_configuration(CP_ID, "TransactionMessageRetryInterval", "30")
        transaction_id = await start_charging(station, csms)
        csms.refuse_next("StopTransaction", count=2)
        start = mark(csms)
        await csms.remote_stop(CP_ID, transaction_id)

        assert await timer.next_alarm() == 30  # the interval after the first attempt
        assert len(calls(csms, "StopTransaction", after=start)) == 1
        timer.advance(30)
        assert await timer.next_alarm() == 60  # twice the interval after the second
        assert len(calls(csms, "StopTransaction", after=start)) == 2
        timer.advance(60)
        await status_reached(csms, "Finishing", after=start)  # the third went through

    assert len(calls(csms, "StopTransaction", after=start)) == 3
    assert csms.transactions[transaction_id].reason == "Remote"
