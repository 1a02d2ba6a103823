"""The control pilot as a hardware part: the interlock it adds to the contactor, its wave on the
PWM pin, and state F when the outputs go off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cp_pi.hardware import safety
from cp_pi.hardware.connector import ConnectorHardware

from .helpers import FIRST, Bench, BenchMaker, connector


async def settled(bench: Bench, predicate: Callable[[], bool]) -> None:
    """Wait, change by change of the connector's inputs, until ``predicate`` holds."""
    async with asyncio.timeout(2):
        while not predicate():
            await bench.changes.get()


async def locked_in_b(bench: Bench) -> ConnectorHardware:
    hw = bench.hw
    bench.rig.plug(1)
    await settled(bench, lambda: hw.cable_present and hw.pilot_state == "B")
    assert (await hw.lock()).ok
    return hw


async def test_the_contactor_closes_only_in_c2(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(pilot=True))
    hw = await locked_in_b(bench)
    contactor = bench.pin(FIRST.contactor)

    assert not (await hw.close_contactor()).ok  # B1: no vehicle asks, no wave
    bench.rig.ev(1, "C")
    await settled(bench, lambda: hw.pilot_state == "C")
    assert not (await hw.close_contactor()).ok  # C1: no current on offer
    hw.offer(32)
    await settled(bench, hw.energy_allowed)
    assert (await hw.close_contactor()).ok  # C2
    assert contactor.state

    bench.rig.ev(1, "B")
    await settled(bench, lambda: not contactor.state)  # opened by the pilot's sampler
    assert not (await hw.close_contactor()).ok


async def test_state_d_needs_ventilation(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(pilot=True))
    hw = await locked_in_b(bench)
    hw.offer(16)
    bench.rig.ev(1, "D")
    await settled(bench, lambda: hw.pilot_state == "D")
    assert not hw.energy_allowed()
    assert not (await hw.close_contactor()).ok


async def test_never_with_an_invalid_cable_coding(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(pilot=True))
    hw = bench.hw
    bench.rig.plug(1, cable_rating="bad")
    await settled(bench, lambda: hw.cable_present and hw.pilot_state == "B")
    await settled(bench, lambda: hw.cable_coding == "invalid")
    assert (await hw.lock()).ok
    hw.offer(32)
    bench.rig.ev(1, "C")
    await settled(bench, lambda: hw.pilot_state == "C")
    assert not hw.energy_allowed()
    assert not (await hw.close_contactor()).ok
    assert hw.cable_rating_a is None


async def test_the_wave_follows_the_offer_and_f_wins(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(pilot=True))
    hw = bench.hw
    pwm = bench.pin(FIRST.pilot)
    assert pwm.state == 1.0  # steady +12 V
    assert pwm.frequency == 1000
    hw.offer(6)
    assert round(pwm.state, 4) == 0.1
    hw.offer(63)
    assert round(pwm.state, 4) == 0.892
    hw.offer(5.9)
    assert pwm.state == 1.0
    hw.offer(32)
    hw.set_unavailable(True)
    assert pwm.state == 0.0  # -12 V: state F
    await settled(bench, lambda: hw.pilot_state == "F")
    hw.set_unavailable(False)
    assert round(pwm.state, 4) == 0.5333


async def test_the_pilot_goes_to_state_f_when_the_outputs_go_off(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(pilot=True))
    bench.hw.offer(32)
    safety.all_outputs_off()  # what SIGTERM and the exit hook do
    assert bench.pin(FIRST.pilot).state == 0.0
