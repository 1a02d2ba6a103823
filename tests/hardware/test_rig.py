"""The simulated world: latch travel, feedback wiring, aux contact lag, faults and energy.

Waits here are on the loop's own timers: a sleep longer than the rig's delay ends after the rig's
timer has fired, because the loop runs timers in deadline order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice

from cp_pi.config import ActiveLevel
from cp_pi.core.metering import ENERGY_REGISTER, POWER, Reading
from cp_pi.hardware.rig import BenchRig, RigFault

from .helpers import FIRST, POWER_W, RIG, TRAVEL, Bench, connector


@pytest.fixture
async def rig(factory: Any) -> Any:
    world = BenchRig(factory, [connector()], RIG, loop=asyncio.get_running_loop())
    yield world
    world.close()


async def hold(output: Any, seconds: float) -> None:
    output.on()
    try:
        await asyncio.sleep(seconds)
    finally:
        output.off()


async def test_the_latch_moves_only_when_the_coil_is_held_for_the_travel_time(
    rig: BenchRig, factory: Any
) -> None:
    coil = DigitalOutputDevice(FIRST.lock, pin_factory=factory)

    coil.on()
    coil.off()
    await asyncio.sleep(3 * TRAVEL)
    assert not rig.lock_engaged(1)

    await hold(coil, 3 * TRAVEL)
    assert rig.lock_engaged(1)
    assert not factory.pin(FIRST.feedback).state, "active low: engaged reads low"


async def test_the_feedback_honours_an_active_high_wiring(factory: Any) -> None:
    rig = BenchRig(
        factory,
        [connector(feedback_active=ActiveLevel.HIGH)],
        RIG,
        loop=asyncio.get_running_loop(),
    )
    feedback = factory.pin(FIRST.feedback)
    assert not feedback.state

    await hold(DigitalOutputDevice(FIRST.lock, pin_factory=factory), 3 * TRAVEL)

    assert feedback.state
    rig.close()


async def test_the_aux_contact_lags_the_contactor_and_a_weld_holds_it(
    rig: BenchRig, factory: Any
) -> None:
    output = DigitalOutputDevice(FIRST.contactor, pin_factory=factory)
    aux = factory.pin(FIRST.aux)  # active low
    lag = 3 * RIG.contactor_delay
    rig.set_fault(1, RigFault.CONTACTOR_WELDED)
    assert rig.fault(1) is RigFault.CONTACTOR_WELDED

    output.on()
    assert aux.state, "not closed yet"
    await asyncio.sleep(lag)
    assert not aux.state, "closed"
    output.off()
    await asyncio.sleep(lag)
    assert not aux.state, "welded: still closed"

    rig.set_fault(1, RigFault.NONE)
    assert aux.state, "healed: open again"


async def test_a_pin_claimed_before_the_rig_cannot_be_watched(factory: Any) -> None:
    DigitalOutputDevice(FIRST.contactor, pin_factory=factory)

    with pytest.raises(RuntimeError, match="before the bench rig"):
        BenchRig(factory, [connector()], RIG, loop=asyncio.get_running_loop())


async def test_connectors_are_numbered_from_one(rig: BenchRig) -> None:
    with pytest.raises(KeyError):
        rig.plug(0)
    with pytest.raises(KeyError):
        rig.plug(2)


async def test_energy_flows_only_while_the_contactor_is_closed(bench: Bench) -> None:
    loop = asyncio.get_running_loop()
    meter = bench.rig.meter(1)
    bench.rig.plug(1)
    while not bench.hw.cable_present:
        await bench.next_change()
    assert (await bench.hw.lock()).ok
    assert meter.read_wh() == 0

    closing = loop.time()
    assert (await bench.hw.close_contactor()).ok
    await asyncio.sleep(0.05)
    assert (await bench.hw.open_contactor()).ok
    closed_at_most = loop.time() - closing
    charged = meter.read_wh()

    assert 0.045 * POWER_W / 3600 <= charged <= closed_at_most * POWER_W / 3600
    await asyncio.sleep(0.05)
    assert meter.read_wh() == charged


async def test_the_meter_reports_power_only_while_the_contactor_is_closed(bench: Bench) -> None:
    meter = bench.rig.meter(1)
    assert {ENERGY_REGISTER, POWER, "Power.Active.Import.L3", "Voltage.L1-N"} < meter.measurands
    assert "Voltage.L1" not in meter.measurands  # a voltage is measured against neutral
    bench.rig.plug(1)
    assert (await bench.hw.lock()).ok
    assert meter.read([POWER, "Frequency", "Current.Import.L2"]) == [
        Reading(POWER, 0, "W"),
        Reading("Current.Import", 0, "A", "L2"),
    ]

    assert (await bench.hw.close_contactor()).ok
    (power, energy) = meter.read([POWER, ENERGY_REGISTER])
    assert power == Reading(POWER, POWER_W, "W")
    assert energy == Reading(ENERGY_REGISTER, meter.read_wh(), "Wh")
    per_phase = POWER_W / 3
    assert [r.value for r in meter.read([POWER + ".L1", POWER + ".L2", POWER + ".L3"])] == [
        round(per_phase, 1)
    ] * 3
    assert [r.value for r in meter.read(["Current.Import"])] == [round(per_phase / 230, 2)] * 3
    assert [(r.phase, r.value) for r in meter.read(["Voltage"])] == [
        ("L1-N", 230.0),
        ("L2-N", 230.0),
        ("L3-N", 230.0),
    ]
    assert (await bench.hw.open_contactor()).ok
    assert meter.read([POWER]) == [Reading(POWER, 0, "W")]
