"""Lock actuators driven inside the bench rig: what the coils and motor receive, and the verdict."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from cp_pi.config import MAX_DRIVE_TIME, ConnectorConfig, LockConfig, LockKind
from cp_pi.core.reading import ConnectorReading, LockOutcome, LockPosition
from cp_pi.hardware.inputs import LockFeedback
from cp_pi.hardware.lock import LockActuator
from cp_pi.hardware.parts import build_lock
from cp_pi.hardware.rig import BenchRig, RigFault

from .helpers import DRIVE, FIRST, PAUSE, RETRIES, RIG, connector
from .pins import EARLY, assert_never_high, assert_pulse, assert_pulses, gaps, pulses

ENGAGED, RELEASED = LockPosition.ENGAGED, LockPosition.RELEASED


@dataclass
class LockBench:
    rig: BenchRig
    lock: LockActuator
    lock_pin: Any
    unlock_pin: Any


@pytest.fixture
async def lock_bench(factory: Any) -> AsyncIterator[Callable[..., LockBench]]:
    """An actuator and its feedback on connector 1 of a rig."""
    built: list[tuple[BenchRig, LockFeedback, LockActuator]] = []

    def make(config: ConnectorConfig | None = None) -> LockBench:
        config = config or connector()
        loop = asyncio.get_running_loop()
        rig = BenchRig(factory, [config], RIG, loop=loop)
        actuator = build_lock(1, config, pin_factory=factory, loop=loop)
        assert actuator is not None
        built.append((rig, actuator.feedback, actuator))
        return LockBench(rig, actuator, factory.pin(FIRST.lock), factory.pin(FIRST.unlock))

    yield make
    for rig, feedback, actuator in built:
        actuator.release()
        feedback.release()
        rig.close()


async def test_locking_is_one_pulse_on_the_lock_coil(lock_bench: Callable[..., LockBench]) -> None:
    bench = lock_bench()

    result = await bench.lock.drive(ENGAGED)

    assert (result.outcome, result.attempts) == (LockOutcome.LOCKED, 1)
    assert bench.rig.lock_engaged(1)
    assert bench.lock.position is ENGAGED
    assert_pulse(bench.lock_pin, DRIVE)
    assert_never_high(bench.unlock_pin)
    assert bench.lock.drives == 1


async def test_a_lock_already_open_unlocks_without_a_pulse(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench()

    result = await bench.lock.drive(RELEASED)

    assert (result.outcome, result.attempts) == (LockOutcome.UNLOCKED, 0)
    assert_never_high(bench.lock_pin)
    assert_never_high(bench.unlock_pin)
    assert bench.lock.drives == 0


async def test_drives_take_turns_with_the_pause_between_them(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench()

    locked, unlocked = await asyncio.gather(bench.lock.drive(ENGAGED), bench.lock.drive(RELEASED))

    assert (locked.outcome, unlocked.outcome) == (LockOutcome.LOCKED, LockOutcome.UNLOCKED)
    assert not bench.rig.lock_engaged(1)
    assert_pulse(bench.lock_pin, DRIVE)
    assert_pulse(bench.unlock_pin, DRIVE)
    # Both histories start when the rig claims the pins, a few microseconds apart.
    [(_, lock_end)] = pulses(bench.lock_pin)
    [(unlock_start, _)] = pulses(bench.unlock_pin)
    assert unlock_start - lock_end >= PAUSE - EARLY


async def test_a_zero_pause_still_rests_the_coil_as_long_as_it_was_on(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench(connector(pause=0.0))
    bench.rig.set_fault(1, RigFault.LOCK_STUCK)

    await bench.lock.drive(ENGAGED)

    assert_pulses(bench.lock_pin, RETRIES + 1, DRIVE)
    assert all(gap >= DRIVE - EARLY for gap in gaps(bench.lock_pin))


async def test_a_stuck_lock_is_retried_then_reported(lock_bench: Callable[..., LockBench]) -> None:
    bench = lock_bench()
    bench.rig.set_fault(1, RigFault.LOCK_STUCK)

    result = await bench.lock.drive(ENGAGED)

    assert result.outcome is LockOutcome.FAILED
    assert result.attempts == RETRIES + 1
    assert result.fault is ConnectorReading.LOCK_FAILED_TO_MOVE
    assert bench.lock.drive_failed
    assert_pulses(bench.lock_pin, RETRIES + 1, DRIVE)
    assert all(gap >= PAUSE - EARLY for gap in gaps(bench.lock_pin))


async def test_a_successful_drive_clears_the_failure(lock_bench: Callable[..., LockBench]) -> None:
    bench = lock_bench()
    bench.rig.set_fault(1, RigFault.LOCK_STUCK)
    await bench.lock.drive(ENGAGED)
    bench.rig.set_fault(1, RigFault.NONE)

    result = await bench.lock.drive(ENGAGED)

    assert result.outcome is LockOutcome.LOCKED
    assert not bench.lock.drive_failed


async def test_a_broken_feedback_wire_fails_the_lock(lock_bench: Callable[..., LockBench]) -> None:
    bench = lock_bench()
    bench.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)

    result = await bench.lock.drive(ENGAGED)

    assert result.outcome is LockOutcome.FAILED
    assert result.fault is ConnectorReading.LOCK_FAILED_TO_MOVE
    assert bench.rig.lock_engaged(1), "the latch moved; only the wire lies"
    assert_pulses(bench.lock_pin, RETRIES + 1, DRIVE)


async def test_a_motor_lock_runs_forward_to_lock_and_backward_to_unlock(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench(connector(LockKind.MOTOR))

    locked = await bench.lock.drive(ENGAGED)
    assert bench.rig.lock_engaged(1)
    assert_pulse(bench.lock_pin, DRIVE)
    assert_never_high(bench.unlock_pin)
    unlocked = await bench.lock.drive(RELEASED)

    assert (locked.outcome, unlocked.outcome) == (LockOutcome.LOCKED, LockOutcome.UNLOCKED)
    assert not bench.rig.lock_engaged(1)
    assert_pulse(bench.lock_pin, DRIVE)
    assert_pulse(bench.unlock_pin, DRIVE)


async def test_a_push_push_coil_gets_one_pulse_per_direction(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench(connector(push_push=True))

    locked = await bench.lock.drive(ENGAGED)
    assert bench.rig.lock_engaged(1)
    again = await bench.lock.drive(ENGAGED)
    unlocked = await bench.lock.drive(RELEASED)

    assert [r.outcome for r in (locked, again, unlocked)] == [
        LockOutcome.LOCKED,
        LockOutcome.LOCKED,
        LockOutcome.UNLOCKED,
    ]
    assert not bench.rig.lock_engaged(1)
    assert_pulses(bench.lock_pin, 2, DRIVE)


async def test_a_cancelled_drive_switches_the_coil_off(
    lock_bench: Callable[..., LockBench],
) -> None:
    bench = lock_bench()
    drive = asyncio.create_task(bench.lock.drive(ENGAGED))
    await asyncio.sleep(0)  # the drive runs up to its pulse
    assert bench.lock_pin.state, "the coil should be on mid-pulse"

    drive.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drive

    assert not bench.lock_pin.state
    assert not bench.lock.moving


async def test_the_on_time_is_capped_whatever_the_configuration_says(
    lock_bench: Callable[..., LockBench],
) -> None:
    config = connector()
    too_long = LockConfig.model_construct(**(config.lock.model_dump() | {"drive_time": 10.0}))
    bench = lock_bench(config.model_copy(update={"lock": too_long}))

    result = await bench.lock.drive(ENGAGED)

    assert result.outcome is LockOutcome.LOCKED
    assert_pulse(bench.lock_pin, MAX_DRIVE_TIME)
