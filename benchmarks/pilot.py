"""Figures: the control pilot's reaction, and what its sampling costs.

Reaction: on mock pins, while charging (vehicle in C2, contactor closed), the rig's vehicle goes
to B, which changes the ADC's CP level at once; the time until the contactor output reads low is
taken by watching the pin from this thread, which never runs the loop meanwhile: the pilot's
sampler thread alone opens the contactor. Each figure bounds the ADC-change-to-low time from
above by the 0.1 ms the watch sleeps between looks.

CPU: the whole process's CPU time over a window, with the default pilot settings (the sampler
looks every ``sample_idle`` with no vehicle, every ``sample_active`` while energy can flow). On
mock pins each ADC read is bit-banged through gpiozero's software SPI into the rig's simulated
MCP3008, about 0.3 ms of Python per channel on this machine; a Pi's hardware SPI (spidev) reads a
channel in tens of microseconds, so these figures bound a Pi's from above.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gpiozero.pins.mock import MockFactory

from benchmarks.common import Figure, median, ms, p99
from cp_pi.config import ConnectorConfig, LockConfig, PilotConfig, RigConfig
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.parts import Hardware, build_hardware

GOAL_P99 = 0.020
GOAL_IDLE_PERCENT = 1.0
CONTACTOR_PIN = 24


async def _settled(changed: asyncio.Event, predicate: Callable[[], bool]) -> None:
    """Between trials only, woken by the connector's changes."""
    async with asyncio.timeout(2.0):
        while not predicate():
            changed.clear()
            await changed.wait()


def _build(pilot: PilotConfig) -> tuple[Hardware, ConnectorHardware, MockFactory]:
    config = ConnectorConfig(
        proximity_debounce=0.001,
        lock=LockConfig(drive_time=0.01, pause=0.0, settle_time=0.001, retries=0),
        pilot=pilot,
    )
    rig = RigConfig(lock_travel_time=0.005, contactor_delay=0.001, ev_delay=0.0)
    factory = MockFactory()
    hardware = build_hardware([config], rig, pin_factory=factory, loop=asyncio.get_running_loop())
    return hardware, hardware.connectors[0], factory


async def _charging(connector: ConnectorHardware, changed: asyncio.Event) -> bool:
    """The vehicle in C2 and the contactor closed."""
    connector.offer(32)
    await _settled(changed, lambda: connector.energy_allowed())
    return (await connector.close_contactor()).ok


async def reaction(trials: int) -> list[Figure]:
    hardware, connector, factory = _build(PilotConfig())
    bench = hardware.rig
    assert bench is not None
    contactor = factory.pin(CONTACTOR_PIN)
    changed = asyncio.Event()
    connector.on_change = changed.set
    times: list[float] = []
    failed = 0
    try:
        bench.plug(1)
        await _settled(changed, lambda: connector.cable_present)
        await connector.lock()
        for _ in range(trials):
            bench.ev(1, "C")
            if not await _charging(connector, changed):
                failed += 1
                continue
            start = time.perf_counter()
            bench.ev(1, "B")  # the ADC's CP level is now the vehicle's B
            deadline = start + 0.5
            while contactor.state and time.perf_counter() < deadline:
                # The loop is held on purpose: only the sampler's thread may act.
                time.sleep(0.0001)  # noqa: ASYNC251
            times.append(time.perf_counter() - start)
            failed += bool(contactor.state)
            await _settled(changed, lambda: connector.pilot_state == "B")
    finally:
        hardware.close()
        factory.reset()
    if not times:
        name = "pilot reaction: vehicle leaves C to contactor low"
        return [Figure(name, "no trial ran", met=False)]
    return [
        Figure(
            f"pilot reaction: vehicle leaves C to contactor low, {len(times)} trials (p99)",
            ms(p99(times)),
            f"<= {ms(GOAL_P99)}",
            p99(times) <= GOAL_P99 and not failed,
        ),
        Figure("pilot reaction: vehicle leaves C to contactor low (median)", ms(median(times))),
    ]


async def cpu(window: float) -> list[Figure]:
    hardware, connector, factory = _build(PilotConfig())
    bench = hardware.rig
    assert bench is not None
    changed = asyncio.Event()
    connector.on_change = changed.set
    try:
        await asyncio.sleep(0.5)  # settled: no vehicle, the sampler looks slowly
        before = time.process_time()
        await asyncio.sleep(window)
        idle = 100 * (time.process_time() - before) / window
        bench.plug(1)
        await _settled(changed, lambda: connector.cable_present)
        await connector.lock()
        if not await _charging(connector, changed):
            return [Figure("pilot CPU while charging", "the contactor did not close", met=False)]
        before = time.process_time()
        await asyncio.sleep(window)
        charging = 100 * (time.process_time() - before) / window
    finally:
        hardware.close()
        factory.reset()
    return [
        Figure(
            f"pilot idle CPU, no vehicle, over {window:g} s (mock SPI)",
            f"{idle:.2f} % of one core",
            f"< {GOAL_IDLE_PERCENT:g} %",
            idle < GOAL_IDLE_PERCENT,
        ),
        Figure(
            f"pilot CPU while charging, over {window:g} s (mock SPI)",
            f"{charging:.1f} % of one core",
        ),
    ]


async def measure(trials: int, window: float) -> list[Figure]:
    return [*await reaction(trials), *await cpu(window)]
