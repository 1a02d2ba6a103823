"""The charge point's time: what its timestamps say.

Two rules from OCPP 1.6 and from the field:

* A Raspberry Pi has no battery-backed clock: until NTP answers it boots with the time it last
  saved, or 1970. OCPP 1.6 (4.2, 4.6) recommends that a charge point set its clock from the
  ``currentTime`` of the central system's BootNotification and Heartbeat answers; this clock does
  so whenever the kernel says the system clock is not synchronised, by keeping an offset. The
  system clock itself is never set.
* Waits that must not depend on the wall clock (a retry of a transaction message) are timed by a
  :class:`Timer`: the event loop's clock, or one a test moves by hand.
* A clock stepped backwards (NTP correcting a wrong guess, an operator) must not make a
  StopTransaction older than its StartTransaction: the time given out never goes backwards. After
  a backward step it runs on from the last timestamp at the monotonic clock's pace until the
  wall clock catches up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from cp_pi.core.metering import timestamp

log = logging.getLogger("cp_pi.clock")

#: adjtimex(2)'s answer while the kernel's clock is not synchronised (STA_UNSYNC).
_TIME_ERROR = 5
#: An adopted time this far from the current one is worth a line in the log.
_NOTEWORTHY = 1.0


def system_clock_synchronised() -> bool:
    """What the kernel says, the way ``timedatectl`` asks it (adjtimex, read-only); True where
    it cannot be asked (not Linux), so that a clock nobody can judge is left alone."""
    clock_state = _kernel_clock_state()
    return clock_state is None or clock_state() != _TIME_ERROR


@functools.cache
def _kernel_clock_state() -> Callable[[], int] | None:
    """adjtimex(2) with ``modes`` 0, which reads without changing anything; None without it."""
    import ctypes  # here: only a charge point told the time loads it (about 0.1 MiB)

    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None

    def state() -> int:
        timex = ctypes.create_string_buffer(512)  # zeroed, larger than any struct timex
        return int(adjtimex(timex))

    return state


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timer(Protocol):
    """Monotonic seconds, and a callback at one of them (what the event loop offers)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


class LoopTimer:
    """The running event loop's clock (``time.monotonic``) and its timers."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        return asyncio.get_running_loop().call_at(when, callback)


class Clock:
    """Wall time for OCPP timestamps, corrected from the central system and never going back."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        synchronised: Callable[[], bool] = system_clock_synchronised,
        timer: Timer | None = None,
    ) -> None:
        #: Times the charge point's retries.
        self.timer: Timer = timer or LoopTimer()
        self._wall = wall
        self._monotonic = monotonic
        self._synchronised = synchronised
        self._offset = 0.0
        #: (wall time given out, monotonic time then) of the last reading.
        self._last: tuple[float, float] | None = None

    def now(self) -> datetime:
        wall = self._wall() + self._offset
        monotonic = self._monotonic()
        if self._last is not None:
            last_wall, last_monotonic = self._last
            wall = max(wall, last_wall + (monotonic - last_monotonic))
        self._last = (wall, monotonic)
        return datetime.fromtimestamp(wall, UTC)

    def timestamp(self) -> str:
        """Now, in the form every timestamp this charge point sends has."""
        return timestamp(self.now())

    def adopt(self, current_time: str) -> None:
        """The central system's ``currentTime``: taken when the system clock is not synchronised.

        A time earlier than one already given out only slows nothing down: timestamps still
        never go backwards.
        """
        if self._synchronised():
            return
        try:
            told = datetime.fromisoformat(current_time)
        except (TypeError, ValueError):
            log.warning("clock: ignored a currentTime that is not a time: %.40r", current_time)
            return
        if told.tzinfo is None:
            told = told.replace(tzinfo=UTC)
        offset = told.timestamp() - self._wall()
        if abs(offset - self._offset) >= _NOTEWORTHY:
            log.info(
                "clock: the system clock is not synchronised; the central system's time is"
                " taken (%+.1f s from the system clock)",
                offset,
            )
        self._offset = offset
