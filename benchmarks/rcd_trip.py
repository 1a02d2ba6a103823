"""Figure: from the residual-current monitor's trip edge to the contactor output low.

On mock pins, while charging: the trip pin is driven to its tripped level and the time until
that call returns is taken; the contactor output is checked low at that moment, so each figure
bounds the edge-to-low time from above. A real pin adds the pin driver's own edge latency (lgpio
reports an edge on its thread within tens of microseconds), which this machine cannot measure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gpiozero.pins.mock import MockFactory

from benchmarks.common import Figure, median, ms, p99
from cp_pi.config import ConnectorConfig, LockConfig, RcdConfig, RigConfig
from cp_pi.hardware.parts import build_hardware

GOAL_P99 = 0.005
TRIP_PIN, CONTACTOR_PIN = 26, 24


async def _settled(changed: asyncio.Event, predicate: Callable[[], bool]) -> None:
    """Between trials only (the debounce runs on the loop), woken by the connector's changes."""
    async with asyncio.timeout(2.0):
        while not predicate():
            changed.clear()
            await changed.wait()


async def measure(trials: int) -> list[Figure]:
    config = ConnectorConfig(
        proximity_debounce=0.001,
        lock=LockConfig(drive_time=0.01, pause=0.0, settle_time=0.001, retries=0),
        rcd=RcdConfig(trip_pin=TRIP_PIN),
        pilot=None,  # the contactor alone, closed at will: the pilot's reaction is its own figure
    )
    rig = RigConfig(lock_travel_time=0.005, contactor_delay=0.001)
    factory = MockFactory()
    hardware = build_hardware([config], rig, pin_factory=factory, loop=asyncio.get_running_loop())
    assert hardware.rig is not None
    connector, bench = hardware.connectors[0], hardware.rig
    trip, contactor = factory.pin(TRIP_PIN), factory.pin(CONTACTOR_PIN)
    changed = asyncio.Event()
    connector.on_change = changed.set
    times: list[float] = []
    failed = 0
    try:
        for _ in range(trials):
            bench.plug(1)
            await _settled(changed, lambda: connector.cable_present)
            await connector.lock()
            if not (await connector.close_contactor()).ok:
                failed += 1
                continue
            start = time.perf_counter()
            trip.drive_high()  # active high: tripped
            times.append(time.perf_counter() - start)
            failed += bool(contactor.state)
            trip.drive_low()
            connector.acknowledge_trip()
            await connector.open_contactor()
            await connector.unlock()
            bench.unplug(1)
            await _settled(changed, lambda: not connector.cable_present)
            connector.reading()  # healthy and the cable out: the trip clears
    finally:
        hardware.close()
        factory.reset()
    if not times:
        return [Figure("RCD trip edge to contactor low", "no trial ran", met=False)]
    return [
        Figure(
            f"RCD trip edge to contactor low, {len(times)} trials (p99)",
            ms(p99(times)),
            f"<= {ms(GOAL_P99)}",
            p99(times) <= GOAL_P99 and not failed,
        ),
        Figure("RCD trip edge to contactor low (median)", ms(median(times))),
    ]
