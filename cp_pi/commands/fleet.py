"""`cp-pi fleet`: many simulated charge points in one process, to load-test a central system.

Each charge point is a whole station as ``cp-pi run --mock`` builds it (its own mock pins, bench
rig and SQLite store), so the central system sees what real ones send: BootNotification, statuses,
heartbeats and, with the charge pattern, Authorize, StartTransaction, MeterValues and
StopTransaction. Stations start at a bounded rate: a central system under test should see a ramp,
not every connection in the same instant, and the fleet's own event loop stays responsive.

Problems are counted from the log: every charge point already logs what goes wrong at WARNING or
above, so a handler on the ``cp_pi`` logger sees each of them once, without a second reporting
path through the station code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import resource
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Literal, TextIO

from pydantic import ValidationError

from cp_pi.app import Station, StationError, running_station, stopped_by_signals
from cp_pi.config import ConnectorConfig, Settings
from cp_pi.csms.server import SERVING_JOURNAL_LIMIT, CentralSystem
from cp_pi.errors import UserError
from cp_pi.station.connector import Connector, Transaction
from cp_pi.store import StoreError
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.fleet")

Pattern = Literal["none", "charge"]

#: Stations started per second unless told otherwise.
DEFAULT_RATE = 50.0
#: Seconds between two summary lines.
DEFAULT_SUMMARY_EVERY = 10.0
#: Mean seconds a simulated car charges, and a charger stays idle between two sessions.
DEFAULT_CHARGE_TIME, DEFAULT_IDLE_TIME = 60.0, 30.0
#: A swipe that has not started a transaction by then counts as a problem.
TRANSACTION_WITHIN = 30.0
#: How long a stopping fleet waits for its last StopTransaction messages to be answered.
DRAIN_WITHIN = 10.0
#: Stations closing their connections at the same time: the central system sees a bounded
#: burst of disconnections, and no station's clean-up starves the others of the event loop.
STOPPING_AT_ONCE = 50

#: Open files per station: its socket, its SQLite file and write-ahead log with its index, and
#: the embedded central system's end of the socket; plus some for the process itself.
FILES_PER_STATION, FILES_BESIDES = 5, 64

#: A charge point id is at most 48 characters (the configuration's rule); the number takes
#: a dash and at least four digits.
_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,43}")


class FleetOptionsError(UserError, ValueError):
    """An option the fleet cannot run with; the command line shows it as one line, exit 2."""


def _station_template(
    count: int, rate: float, id_prefix: str, csms_url: str, times: dict[str, float | None]
) -> Settings:
    """The settings every station copies, once each option is known to work."""
    if count < 1:
        raise FleetOptionsError(f"--count {count}: at least 1")
    if not _PREFIX.fullmatch(id_prefix):
        raise FleetOptionsError(f"--id-prefix {id_prefix!r}: 1 to 43 of A-Z a-z 0-9 . _ : -")
    for name, seconds in {"--rate": rate, **times}.items():
        if seconds is not None and seconds <= 0:
            raise FleetOptionsError(f"{name} {seconds:g}: above 0")
    try:
        # No control pilot: its sampler's simulated SPI ADC costs CPU per station, and
        # gpiozero's software SPI serves one ADC per process; the CSMS sees no difference.
        template = Settings(
            csms_url=csms_url, pin_factory="mock", connectors=[ConnectorConfig(pilot=None)]
        )
    except ValidationError as error:
        raise FleetOptionsError(f"--csms-url: {error.errors()[0]['msg']}") from None
    _allow_open_files(count * FILES_PER_STATION + FILES_BESIDES)
    return template


def _allow_open_files(needed: int) -> None:
    """Raise the soft limit on open files as far as the fleet needs: it is often 1,024, a fleet
    of 200. The hard limit is the administrator's; below ``needed`` it is a usage error."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise FleetOptionsError(
            f"--count: the fleet needs about {needed} open files and this process may open"
            f" {hard} (ulimit -Hn); start fewer charge points or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def charge_point_ids(prefix: str, count: int) -> list[str]:
    """``P-0001`` ... ``P-NNNN``: zero-padded, so that they sort in start order."""
    width = max(4, len(str(count)))
    return [f"{prefix}-{number:0{width}d}" for number in range(1, count + 1)]


class _ProblemCounter(logging.Handler):
    """Counts the charge points' records at WARNING and above (the embedded CSMS's aside)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("cp_pi.csms"):
            self.count += 1


class SimulatedCharger:
    """One station of the fleet, and the hands of its driver when the pattern is ``charge``."""

    def __init__(self, station: Station, fleet: Fleet, tag: str) -> None:
        self.station = station
        self.tag = tag
        self._fleet = fleet
        self._changed = asyncio.Event()
        self._seen: Transaction | None = None
        self.leaving = False
        station.charger.subscribe(self._on_change)

    @property
    def connector(self) -> Connector:
        return self.station.connectors[1]

    def _on_change(self) -> None:
        transaction = self.connector.transaction
        if transaction is not self._seen:
            self._fleet.transactions_stopped += self._seen is not None
            self._fleet.transactions_started += transaction is not None
            self._seen = transaction
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until the station's state satisfies ``condition``, woken by its own changes."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def charge_sessions(self, charge_time: float, idle_time: float) -> None:
        """Plug, swipe, charge, swipe again, unplug, each wait jittered by +-50 %; until asked
        to leave, and then the session under way is finished first."""
        cp, rig, connector = self.station.charger, self.station.rig, self.connector
        assert rig is not None  # a fleet runs on mock pins only
        while True:
            await self.until(lambda: self.leaving or (cp.registered and cp.csms_connected))
            if await self._leaving_within(_jitter(idle_time)):
                return
            rig.plug(1)
            cp.swipe(1, self.tag)
            try:
                await self.until(lambda: connector.transaction is not None, TRANSACTION_WITHIN)
            except TimeoutError:
                log.warning("%s: no transaction %.0f s after the swipe", cp.id, TRANSACTION_WITHIN)
            else:
                await self._leaving_within(_jitter(charge_time))
                # The central system may have ended it meanwhile (RemoteStop, UnlockConnector).
                if connector.transaction is not None:
                    cp.swipe(1, self.tag)  # the tag that started it ends it
                await self.until(lambda: connector.transaction is None)
            await self.until(lambda: not connector.busy.locked())
            rig.unplug(1)

    def leave(self) -> None:
        """Ask the driver to go once the session under way is over."""
        self.leaving = True
        self._changed.set()

    async def _leaving_within(self, seconds: float) -> bool:
        """Sleep ``seconds``, cut short by :meth:`leave`; True when it was."""
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: self.leaving, seconds)
        return self.leaving


def _jitter(mean: float) -> float:
    return random.uniform(0.5 * mean, 1.5 * mean)


class Fleet:
    """The running stations, the figures of the summary line, and an orderly stop."""

    def __init__(self, count: int, out: TextIO) -> None:
        self.count = count
        self.chargers: list[SimulatedCharger] = []
        self.transactions_started = 0
        self.transactions_stopped = 0
        self.problems = _ProblemCounter()
        self._out = out
        self._contexts: list[contextlib.AbstractAsyncContextManager[Station]] = []
        self._drivers: list[asyncio.Task[None]] = []
        self._born = asyncio.get_running_loop().time()

    def summary(self) -> str:
        elapsed = asyncio.get_running_loop().time() - self._born
        points = [charger.station.charger for charger in self.chargers]
        return (
            f"{elapsed:5.0f} s  booted {sum(cp.registered for cp in points)}/{self.count}"
            f"  connected {sum(cp.csms_connected for cp in points)}"
            f"  transactions {self.transactions_started} started,"
            f" {self.transactions_stopped} stopped"
            f"  errors {self.problems.count}"
        )

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def add(self, settings: Settings, tag: str) -> SimulatedCharger:
        context = running_station(settings)
        station = await context.__aenter__()
        self._contexts.append(context)
        charger = SimulatedCharger(station, self, tag)
        self.chargers.append(charger)
        return charger

    def drive(self, charger: SimulatedCharger, charge_time: float, idle_time: float) -> None:
        driver = asyncio.create_task(charger.charge_sessions(charge_time, idle_time))
        driver.add_done_callback(_log_failure)
        self._drivers.append(driver)

    async def stop(self) -> None:
        """Drivers finish their sessions and the messages are delivered, then stations stop."""
        for charger in self.chargers:
            charger.leave()
        try:
            async with asyncio.timeout(DRAIN_WITHIN):
                if self._drivers:
                    await asyncio.wait(self._drivers)
                await asyncio.gather(
                    *(charger.station.charger.outbox.drained() for charger in self.chargers)
                )
        except TimeoutError:
            log.warning("stopping: sessions still under way after %.0f s", DRAIN_WITHIN)
        finally:
            await cancel_and_wait(self._drivers)
            room = asyncio.Semaphore(STOPPING_AT_ONCE)

            async def stop_one(context: contextlib.AbstractAsyncContextManager[Station]) -> None:
                async with room:
                    await context.__aexit__(None, None, None)

            await asyncio.gather(*(stop_one(context) for context in self._contexts))


def _log_failure(driver: asyncio.Task[None]) -> None:
    if not driver.cancelled() and driver.exception() is not None:
        log.error("a simulated driver failed", exc_info=driver.exception())


async def run_fleet(
    count: int,
    *,
    csms_url: str | None = None,
    pattern: Pattern = "none",
    id_prefix: str = "sim",
    data_dir: Path | None = None,
    duration: float | None = None,
    rate: float = DEFAULT_RATE,
    charge_time: float = DEFAULT_CHARGE_TIME,
    idle_time: float = DEFAULT_IDLE_TIME,
    summary_every: float = DEFAULT_SUMMARY_EVERY,
    out: TextIO | None = None,
) -> int:
    """Run ``count`` charge points until SIGTERM, Ctrl+C or ``duration`` seconds have passed.

    Returns 0, or 1 when a problem was counted; raises :class:`FleetOptionsError` before
    starting anything when an option cannot work. ``data_dir`` keeps each store in
    ``data_dir/<id>`` (a rerun then resumes them); without it they live in a temporary
    directory removed at the end.
    """
    times = {"--duration": duration, "--charge-time": charge_time, "--idle-time": idle_time}
    # The embedded central system's address is known once it listens; any loopback URL checks.
    template = _station_template(count, rate, id_prefix, csms_url or "ws://127.0.0.1", times)
    fleet = Fleet(count, out if out is not None else sys.stdout)
    stop = asyncio.Event()
    with (
        stopped_by_signals(stop),
        _counting(fleet.problems),
        _stations_home(data_dir) as home,
    ):
        async with _central_system(csms_url, fleet) as url:
            fleet.say(f"starting {count} charge points against {url}, {rate:g} per second")
            loop = asyncio.get_running_loop()
            deadline = None if duration is None else loop.call_later(duration, stop.set)
            reporter = asyncio.create_task(_report(fleet, stop, summary_every))
            next_start = loop.time()
            try:
                for number, cp_id in enumerate(charge_point_ids(id_prefix, count), start=1):
                    settings = template.model_copy(
                        update={"csms_url": url, "charge_point_id": cp_id, "data_dir": home / cp_id}
                    )
                    try:
                        charger = await fleet.add(settings, tag=f"TAG-{number:06d}")
                    except (OSError, StoreError, StationError) as error:
                        log.error("%s cannot start: %s; stopping the fleet", cp_id, error)
                        break
                    if pattern == "charge":
                        fleet.drive(charger, charge_time, idle_time)
                    next_start += 1 / rate
                    if await _stopped_within(stop, next_start - loop.time()):
                        break
                else:
                    await stop.wait()
            finally:
                if deadline is not None:
                    deadline.cancel()
                reporter.cancel()
                await fleet.stop()
            fleet.say(f"final: {fleet.summary()}")
    return 1 if fleet.problems.count else 0


async def _report(fleet: Fleet, stop: asyncio.Event, every: float) -> None:
    while not await _stopped_within(stop, every):
        fleet.say(fleet.summary())


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, cut short when ``stop`` is set; True when it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


@contextlib.contextmanager
def _counting(counter: logging.Handler) -> Iterator[None]:
    logger = logging.getLogger("cp_pi")
    logger.addHandler(counter)
    try:
        yield
    finally:
        logger.removeHandler(counter)


@contextlib.contextmanager
def _stations_home(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="cp-pi-fleet-") as scratch:
        yield Path(scratch)


@contextlib.asynccontextmanager
async def _central_system(csms_url: str | None, fleet: Fleet) -> AsyncIterator[str]:
    """The given URL, or an embedded central system in this process for the fleet's lifetime."""
    if csms_url is not None:
        yield csms_url
        return
    async with CentralSystem(host="127.0.0.1", port=0, journal_limit=SERVING_JOURNAL_LIMIT) as csms:
        fleet.say(f"embedded central system at {csms.url}")
        yield csms.url
