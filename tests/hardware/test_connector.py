"""A connector's hardware as the controller sees it: interlocks, verdicts and events."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from cp_pi.config import LockKind
from cp_pi.core.reading import ConnectorReading, LockOutcome, LockPosition
from cp_pi.hardware.rig import BenchRig, RigFault, UnreadablePin

from .helpers import DRIVE, FIRST, SECOND, Bench, BenchMaker, connector
from .pins import assert_never_high, assert_pulse


async def plugged(bench: Bench, number: int = 1) -> None:
    """Plug and wait until the debounced proximity input says so."""
    bench.rig.plug(number)
    while not bench.connectors[number - 1].cable_present:
        await bench.next_change()


async def locked_and_charging(bench: Bench) -> None:
    await plugged(bench)
    assert (await bench.hw.lock()).ok
    assert (await bench.hw.close_contactor()).ok


async def test_a_whole_session_keeps_a_good_connection(bench: Bench) -> None:
    hw = bench.hw

    await locked_and_charging(bench)
    assert hw.reading() is ConnectorReading.GOOD_CONNECTION
    assert (await hw.open_contactor()).ok
    result = await hw.unlock()

    assert result.outcome is LockOutcome.UNLOCKED
    assert hw.reading() is ConnectorReading.GOOD_CONNECTION
    assert hw.lock_drives == 2
    assert not bench.rig.lock_engaged(1)


async def test_unlock_is_refused_while_the_contactor_is_closed(bench: Bench) -> None:
    await locked_and_charging(bench)

    result = await bench.hw.unlock()

    assert (result.outcome, result.attempts) == (LockOutcome.FAILED, 0)
    assert result.refused
    assert bench.rig.lock_engaged(1)
    assert_never_high(bench.pin(FIRST.unlock))


async def test_the_contactor_stays_open_until_the_lock_is_engaged(bench: Bench) -> None:
    assert not (await bench.hw.close_contactor()).ok

    assert not bench.hw.contactor_closed
    assert_never_high(bench.pin(FIRST.contactor))


async def test_the_contactor_never_closes_on_an_empty_socket(bench: Bench) -> None:
    await plugged(bench)
    assert (await bench.hw.lock()).ok  # the latch engages, then the cable is pulled

    bench.rig.unplug(1)
    refused_at_once = await bench.hw.close_contactor()  # the debounce has not settled yet
    await bench.next_change()
    refused_later = await bench.hw.close_contactor()

    assert not refused_at_once.ok
    assert not refused_later.ok
    assert not bench.hw.contactor_closed
    assert_never_high(bench.pin(FIRST.contactor))


async def test_only_the_wiring_check_closes_an_empty_socket(bench: Bench) -> None:
    assert (await bench.hw.lock()).ok

    assert (await bench.hw.close_contactor(empty_socket_test=True)).ok
    assert bench.pin(FIRST.contactor).state


async def test_a_welded_contactor_keeps_the_lock_engaged(bench: Bench) -> None:
    bench.rig.set_fault(1, RigFault.CONTACTOR_WELDED)
    await locked_and_charging(bench)

    assert not (await bench.hw.open_contactor()).ok
    assert bench.hw.reading() is ConnectorReading.CONTACTOR_WELDED
    result = await bench.hw.unlock()

    assert result.outcome is LockOutcome.FAILED
    assert result.fault is ConnectorReading.CONTACTOR_WELDED
    assert result.refused
    assert bench.rig.lock_engaged(1)
    assert_never_high(bench.pin(FIRST.unlock))


async def test_a_cut_feedback_wire_reads_as_a_lock_forced_open(bench: Bench) -> None:
    assert (await bench.hw.lock()).ok

    bench.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)

    assert bench.hw.lock_position is LockPosition.RELEASED
    assert bench.hw.reading() is ConnectorReading.LOCK_UNEXPECTEDLY_OPEN


async def test_a_stuck_lock_is_a_lock_fault_and_blocks_charging(bench: Bench) -> None:
    bench.rig.set_fault(1, RigFault.LOCK_STUCK)

    result = await bench.hw.lock()

    assert result.fault is ConnectorReading.LOCK_FAILED_TO_MOVE
    assert bench.hw.reading() is ConnectorReading.LOCK_FAILED_TO_MOVE
    assert bench.hw.reading().is_lock_fault
    assert not (await bench.hw.close_contactor()).ok


async def test_a_cable_inserted_before_start_up_is_seen(make_bench: BenchMaker) -> None:
    def plugged(rig: BenchRig) -> None:
        rig.plug(1)

    bench = make_bench(before=plugged)

    assert bench.hw.cable_present


async def test_plugging_and_unplugging_are_reported_on_the_loop_thread(bench: Bench) -> None:
    bench.rig.plug(1)
    assert await bench.next_change() == (1, threading.get_ident())
    assert bench.hw.cable_present

    bench.rig.unplug(1)
    assert await bench.next_change() == (1, threading.get_ident())
    assert not bench.hw.cable_present


async def test_a_callback_set_after_start_up_is_called(bench: Bench) -> None:
    heard: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    bench.hw.on_change = lambda: heard.set_result(bench.hw.cable_present)

    bench.rig.plug(1)

    async with asyncio.timeout(1):
        assert await heard


async def test_each_connector_answers_for_its_own_pins(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(), connector(pins=SECOND))
    second = bench.connectors[1]

    bench.rig.plug(2)
    assert await bench.next_change() == (2, threading.get_ident())
    assert (await second.lock()).ok

    assert second.cable_present
    assert not bench.hw.cable_present
    assert bench.rig.lock_engaged(2)
    assert not bench.rig.lock_engaged(1)
    assert_pulse(bench.pin(SECOND.lock), DRIVE)
    assert_never_high(bench.pin(FIRST.lock))


async def test_an_unreadable_pin_is_a_verdict_not_an_exception(
    factory: Any, make_bench: BenchMaker
) -> None:
    proximity = factory.pin(FIRST.proximity, pin_class=UnreadablePin)
    bench = make_bench()

    proximity.failing = True

    assert bench.hw.snapshot().read_error
    assert bench.hw.reading() is ConnectorReading.PIN_READ_ERROR


async def test_a_fixed_cable_has_no_lock_to_drive(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(LockKind.NONE))
    hw = bench.hw

    result = await hw.unlock()

    assert not hw.has_lock
    assert hw.lock_position is None
    assert (result.outcome, result.attempts) == (LockOutcome.FAILED, 0)
    assert result.refused
    await plugged(bench)
    assert (await hw.close_contactor()).ok, "nothing to lock: charging may start"


async def test_outputs_off_drops_everything_and_can_be_repeated(bench: Bench) -> None:
    await locked_and_charging(bench)

    bench.hw.outputs_off()
    bench.hw.outputs_off()

    assert not bench.hw.contactor_closed
    assert not bench.pin(FIRST.contactor).state
    assert not bench.pin(FIRST.lock).state
