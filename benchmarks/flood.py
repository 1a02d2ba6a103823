"""Figures 6 to 8: a hostile central system cannot make cp-pi take on unbounded work.

* The flood: a hand-written central system (:class:`RawCsms`, a real websockets server on
  loopback) accepts ``cp-pi run --mock``, answers its BootNotification, then sends CALLs
  (UnlockConnector on an unknown connector, GetConfiguration, TriggerMessage) as fast as the
  socket takes them, never waiting for an answer. Every answer is checked; the answer rate and
  the peak growth of the process's resident set (sampled every 20 ms against the set after a
  warm-up of 1,000 CALLs) are reported.
* Redials: a central system that closes every link right after accepting it; the connections
  ``cp-pi run`` makes in the first minute.
* Safety under load: in this process, a station on mock pins charging while a hostile central
  system in a process of its own (:mod:`benchmarks.hostile_csms`) floods its link with
  GetConfiguration; the lock-feedback pin is made to read open, and the time from that pin's
  change to the contactor output going low is read off the two pins' state histories. Median and
  p99 over the trials, beside the same without the flood.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ocpp.v16.enums import ConfigurationKey as K

from benchmarks.common import Child, Figure, cp_pi_run, median, module, ms, p99
from cp_pi.app import Station, running_station
from cp_pi.config import ConnectorConfig, LockConfig, RigConfig, Settings
from cp_pi.hardware.rig import RigFault
from tests.ocpp16.raw_csms import RawCsms

GOAL_RSS_MB, GOAL_P99 = 5.0, 0.010
WARM_UP = 1_000
CP_ID = "bench-flood"
TAG = "TAG1"

#: The flood's requests and the one right answer to each.
REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("UnlockConnector", {"connectorId": 9}, {"status": "NotSupported"}),
    ("GetConfiguration", {"key": ["MeterValueSampleInterval"]}, {}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
]


async def _flood(raw: RawCsms, count: int, prefix: str) -> None:
    """Send ``count`` CALLs without waiting; each ``send`` blocks only while TCP pushes back."""
    for number in range(count):
        action, payload, _ = REQUESTS[number % len(REQUESTS)]
        await raw.send([2, f"{prefix}{number}", action, payload])


def _check(raw: RawCsms, count: int, prefix: str) -> None:
    expected_configuration = raw.replies[f"{prefix}1"]
    for number in range(count):
        unique_id = f"{prefix}{number}"
        action, _, expected = REQUESTS[number % len(REQUESTS)]
        reply = raw.replies.pop(unique_id)
        right = expected_configuration if action == "GetConfiguration" else [3, unique_id, expected]
        if reply[0] != 3 or reply[1] != unique_id or reply[2] != right[2]:
            raise RuntimeError(f"{action} {unique_id} answered {reply}")


async def _sample_rss(child: Child, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], child.rss_mb())
        await asyncio.sleep(0.02)


async def _flood_figures(count: int, scratch: Path) -> list[Figure]:
    async with RawCsms() as raw:
        child = await Child.start(
            *cp_pi_run(raw.url, CP_ID, scratch / "flood"), log=scratch / "flood.log"
        )
        try:
            try:
                await raw.until(lambda: raw.count("StatusNotification") >= 2, timeout=60)
            except TimeoutError:
                raise child.failure("cp-pi did not boot") from None
            await _flood(raw, WARM_UP, "w")
            await raw.until(lambda: len(raw.replies) >= WARM_UP, timeout=60)
            _check(raw, WARM_UP, "w")
            baseline = child.rss_mb()
            peak = [baseline]
            sampler = asyncio.create_task(_sample_rss(child, peak))
            started = time.perf_counter()
            await _flood(raw, count, "f")
            await raw.until(lambda: len(raw.replies) >= count, timeout=600)
            seconds = time.perf_counter() - started
            sampler.cancel()
            _check(raw, count, "f")
            if raw.connections != 1:
                raise child.failure("the link was redialled during the flood")
        finally:
            await child.stop()
    growth = peak[0] - baseline
    return [
        Figure(
            f"flood of {count:,} CALLs: every answer right, answers per second",
            f"{count / seconds:,.0f}",
        ),
        Figure(
            "flood: peak RSS growth of cp-pi run",
            f"{growth:.2f} MiB",
            f"< {GOAL_RSS_MB:.0f} MiB",
            growth < GOAL_RSS_MB,
        ),
    ]


async def _redials(window: float, scratch: Path) -> list[Figure]:
    async with RawCsms(close_at_once=True) as raw:
        child = await Child.start(
            *cp_pi_run(raw.url, CP_ID, scratch / "redial"), log=scratch / "redial.log"
        )
        try:
            try:
                await raw.until(lambda: raw.connections >= 1, timeout=60)
            except TimeoutError:
                raise child.failure("cp-pi never connected") from None
            await asyncio.sleep(window)
            connections = raw.connections
        finally:
            await child.stop()
    return [
        Figure(
            f"a CSMS closing every link at once: connections in the first {window:.0f} s",
            f"{connections}",
        )
    ]


def _settings(data_dir: Path, csms_url: str) -> Settings:
    lock = LockConfig(drive_time=0.05, pause=0.05, settle_time=0.01, retries=1)
    return Settings(
        charge_point_id=CP_ID,
        csms_url=csms_url,
        pin_factory="mock",
        data_dir=data_dir,
        connectors=[ConnectorConfig(lock=lock)],
        rig=RigConfig(lock_travel_time=0.02, contactor_delay=0.01),
    )


async def _wait(condition: Any, timeout: float = 10) -> None:
    """Look again each millisecond: a benchmark must not add listeners to what it measures."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  (listeners would be part of what is timed)
            await asyncio.sleep(0.001)


def _changed_at(pin: Any, cleared: float, level: bool | None = None) -> float:
    """When ``pin`` first changed (to ``level``, if given) after ``clear_states``.

    gpiozero's mock pins keep each state with the time since the one before.
    """
    at = cleared
    for state in pin.states[1:]:
        at += state.timestamp
        if level is None or bool(state.state) == level:
            return at
    raise RuntimeError(f"{pin} never changed")


async def _trial(station: Station) -> float:
    """Charge, cut the lock-feedback wire; seconds from the pin's change to the contactor off."""
    assert station.rig is not None
    connector = station.connectors[1]
    station.rig.set_fault(1, RigFault.NONE)
    await _wait(lambda: connector.hardware.reading().value == "GOOD_CONNECTION")
    if station.rig.lock_engaged(1):
        # The last trial's safety stop kept the cable locked for its owner: the tag takes it back.
        station.charger.swipe(1, TAG)
        await _wait(lambda: not station.rig.lock_engaged(1) and not connector.busy.locked())
    station.charger.swipe(1, TAG)
    await _wait(
        lambda: (
            connector.hardware.contactor_closed
            and connector.transaction is not None
            and not connector.busy.locked()
        )  # the start sequence is over: charging
    )
    config = station.settings.connectors[0]
    feedback = station.pin_factory.pin(config.lock.feedback_pin)
    contactor = station.pin_factory.pin(config.contactor.pin)
    feedback_cleared = time.monotonic()
    feedback.clear_states()
    contactor_cleared = time.monotonic()
    contactor.clear_states()
    station.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)
    await _wait(lambda: not contactor.state)
    await _wait(lambda: connector.transaction is None)
    return _changed_at(contactor, contactor_cleared, False) - _changed_at(
        feedback, feedback_cleared
    )


async def _latencies(trials: int, scratch: Path, *, flooded: bool) -> list[float]:
    name = "flooded" if flooded else "quiet"
    hostile = await Child.start(
        *module("benchmarks.hostile_csms"), log=scratch / f"{name}.log", control=True
    )
    try:
        assert hostile.process.stdout is not None
        url = (await hostile.process.stdout.readline()).decode().strip()
        async with running_station(_settings(scratch / name, url)) as station:
            assert station.rig is not None
            charger = station.charger
            await _wait(lambda: charger.registered and charger.csms_connected, 30)
            station.rig.plug(1)
            # The tag is authorized once online, then from the cache: under a flood the central
            # system's answers wait behind its own CALLs in its socket, for many seconds.
            charger.configuration.change(K.local_pre_authorize, "true")
            await _trial(station)
            if flooded and await hostile.ask("flood") != "flooding":
                raise hostile.failure("the flood did not start")
            return [await _trial(station) for _ in range(trials)]
    finally:
        await hostile.stop()


async def _safety_figures(trials: int, scratch: Path) -> list[Figure]:
    # The station of these trials runs in this process: its fault lines (one per trial, as
    # intended) would land in the table's output through logging's last-resort handler.
    logging.getLogger("cp_pi").addHandler(logging.NullHandler())
    quiet = await _latencies(trials, scratch, flooded=False)
    flooded = await _latencies(trials, scratch, flooded=True)
    return [
        Figure(
            f"lock opens while charging -> contactor off, no flood (median / p99 of {trials})",
            f"{ms(median(quiet))} / {ms(p99(quiet))}",
        ),
        Figure(
            "  the same during a steady CALL flood (median / p99)",
            f"{ms(median(flooded))} / {ms(p99(flooded))}",
            f"p99 <= {ms(GOAL_P99)}",
            p99(flooded) <= GOAL_P99,
        ),
    ]


async def measure(count: int, *, trials: int, redial_window: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-flood-") as scratch:
        figures = await _flood_figures(count, Path(scratch))
        figures += await _redials(redial_window, Path(scratch))
        figures += await _safety_figures(trials, Path(scratch))
    return figures
