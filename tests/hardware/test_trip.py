"""Energy stops inside the pin event that calls for it, before the event loop runs anything else."""

from __future__ import annotations

import asyncio
import threading

from cp_pi.core.reading import ConnectorReading
from cp_pi.hardware.connector import SUPERVISION_PERIOD
from cp_pi.hardware.rig import RigFault

from .helpers import FIRST, Bench
from .pins import pulses


async def charging(bench: Bench) -> None:
    bench.rig.plug(1)
    assert (await bench.hw.lock()).ok
    assert (await bench.hw.close_contactor()).ok


def contactor_pulses(bench: Bench) -> list[tuple[float, float]]:
    return pulses(bench.pin(FIRST.contactor))


async def test_a_lock_reading_open_opens_the_contactor_within_the_pin_event(bench: Bench) -> None:
    await charging(bench)
    while not bench.changes.empty():
        bench.changes.get_nowait()

    bench.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)  # drives the feedback pin: no await after

    assert not bench.pin(FIRST.contactor).state
    assert len(contactor_pulses(bench)) == 1  # one closing, ended by the trip
    assert not bench.hw.contactor_closed
    assert bench.hw.tripped is ConnectorReading.LOCK_UNEXPECTEDLY_OPEN
    assert bench.changes.empty()  # the loop has not even heard of the edge yet
    assert (await bench.next_change())[0] == 1  # and then it does


async def test_an_aux_contact_dropping_while_closed_opens_the_contactor_within_the_pin_event(
    bench: Bench,
) -> None:
    await charging(bench)

    bench.pin(FIRST.aux).drive_high()  # active low: the main contacts fell open unbidden

    assert not bench.pin(FIRST.contactor).state
    assert bench.hw.tripped is ConnectorReading.CONTACTOR_FAILED_TO_CLOSE


async def test_an_edge_on_the_pin_drivers_thread_opens_the_contactor_on_that_thread(
    bench: Bench,
) -> None:
    await charging(bench)
    feedback = bench.pin(FIRST.feedback)
    contactor_when_the_edge_returned: list[bool] = []

    def edge_from_the_driver() -> None:
        feedback.drive_high()  # active low: reads open; lgpio reports on a thread of its own
        contactor_when_the_edge_returned.append(bool(bench.pin(FIRST.contactor).state))

    driver = threading.Thread(target=edge_from_the_driver)
    driver.start()
    driver.join()  # the loop's thread waits here: nothing on the loop can run meanwhile

    assert contactor_when_the_edge_returned == [False]
    connector, thread = await bench.next_change()
    assert (connector, thread) == (1, threading.get_ident())  # the loop is told afterwards


async def test_a_feedback_pin_that_stops_reading_is_caught_by_the_supervision(
    bench: Bench,
) -> None:
    await charging(bench)
    while not bench.changes.empty():
        bench.changes.get_nowait()

    bench.rig.set_fault(1, RigFault.FEEDBACK_UNREADABLE)  # no edge: nothing tells the loop
    assert bench.pin(FIRST.contactor).state

    async with asyncio.timeout(SUPERVISION_PERIOD + 1):
        await bench.changes.get()
    assert not bench.pin(FIRST.contactor).state
    assert bench.hw.tripped is ConnectorReading.PIN_READ_ERROR


async def test_a_sane_reading_never_trips_and_a_new_close_forgets_the_last_trip(
    bench: Bench,
) -> None:
    await charging(bench)
    assert bench.hw.tripped is None
    bench.rig.set_fault(1, RigFault.FEEDBACK_BROKEN)
    assert bench.hw.tripped is ConnectorReading.LOCK_UNEXPECTEDLY_OPEN

    bench.rig.set_fault(1, RigFault.NONE)
    assert (await bench.hw.close_contactor()).ok

    assert bench.hw.tripped is None
    assert bench.pin(FIRST.contactor).state
    assert len(contactor_pulses(bench)) == 2
