"""Reading a mock output pin's history as the pulses a coil or contactor received."""

from __future__ import annotations

import itertools
import math
from typing import Any

#: How late a pulse may end on a busy test machine; asyncio never ends a sleep early.
LATE = 0.05
EARLY = 0.005


def pulses(pin: Any) -> list[tuple[float, float]]:
    """(start, end) of each high period, in seconds since the pin's history began."""
    found = []
    now = 0.0
    start: float | None = None
    for change in pin.states:
        now += change.timestamp
        if change.state and start is None:
            start = now
        elif not change.state and start is not None:
            found.append((start, now))
            start = None
    if start is not None:
        found.append((start, math.inf))
    return found


def assert_pulses(pin: Any, count: int, seconds: float) -> None:
    """``count`` complete pulses of about ``seconds`` each, and the pin low now."""
    found = pulses(pin)
    assert len(found) == count, f"expected {count} pulses, got {found}"
    for start, end in found:
        assert seconds - EARLY <= end - start <= seconds + LATE, f"pulse of {end - start} s"
    assert not pin.state, "output left high"


def assert_pulse(pin: Any, seconds: float) -> None:
    assert_pulses(pin, 1, seconds)


def assert_never_high(pin: Any) -> None:
    assert_pulses(pin, 0, 0)


def gaps(pin: Any) -> list[float]:
    """Seconds between one pulse's end and the next one's start."""
    found = pulses(pin)
    return [later[0] - earlier[1] for earlier, later in itertools.pairwise(found)]


def time_of_first(pin: Any, state: bool) -> float:
    """Seconds from the start of the pin's history to its first change to ``state``."""
    elapsed = 0.0
    for change in pin.states[1:]:
        elapsed += change.timestamp
        if change.state == state:
            return elapsed
    raise AssertionError(f"pin never went {'high' if state else 'low'}")


def high_time(pin: Any) -> float:
    """Seconds a mock output pin spent high, over its whole history."""
    total, high_since, now = 0.0, None, 0.0
    for change in pin.states[1:]:
        now += change.timestamp
        if change.state and high_since is None:
            high_since = now
        elif not change.state and high_since is not None:
            total += now - high_since
            high_since = None
    assert high_since is None, "the pin is still high"
    return total
