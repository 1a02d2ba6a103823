"""Hardware without an energy meter still charges, at 0 Wh; a meter is read without waiting."""

from __future__ import annotations

import asyncio

from cp_pi.config import MeterConfig
from cp_pi.core.metering import ENERGY_REGISTER, POWER, Reading
from cp_pi.hardware.meter import EnergyMeter, NoMeter

from .helpers import POWER_W, BenchMaker, connector


def test_no_meter_reads_zero() -> None:
    meter: EnergyMeter = NoMeter()

    assert meter.read_wh() == 0


def test_no_meter_promises_only_the_energy_register() -> None:
    meter: EnergyMeter = NoMeter()

    assert meter.measurands == {ENERGY_REGISTER}
    assert meter.read([POWER, ENERGY_REGISTER]) == [Reading(ENERGY_REGISTER, 0, "Wh")]


async def test_a_meter_keeps_its_last_reading_until_it_is_refreshed(
    make_bench: BenchMaker,
) -> None:
    """Reading never goes to the meter: between two polls the register is the last one read,
    and the awaited refresh (before meterStart and meterStop) reads it at that moment."""
    bench = make_bench(connector().model_copy(update={"meter": MeterConfig(poll_interval=60)}))
    meter = bench.hw.meter
    bench.rig.plug(1)
    while not bench.hw.cable_present:
        await bench.next_change()
    assert (await bench.hw.lock()).ok
    assert (await bench.hw.close_contactor()).ok
    at_close = meter.read_wh()
    await asyncio.sleep(0.05)  # 1 kWh per second flows meanwhile

    assert meter.read_wh() == at_close
    await meter.refresh()
    assert meter.read_wh() >= at_close + 0.045 * POWER_W / 3600
