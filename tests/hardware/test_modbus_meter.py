"""The Modbus meter against pymodbus's own server on loopback TCP, holding SDM registers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cp_pi.config import MeterModel
from cp_pi.core.metering import ENERGY_REGISTER, POWER
from cp_pi.hardware.meter_maps import SDM120, SDM630
from cp_pi.hardware.modbus_meter import CURRENT, MODBUS_MEASURANDS, VOLTAGE, ModbusMeter
from tests.hardware.modbus_server import SdmServer, meter_config, running_sdm


@pytest.fixture
async def sdm() -> AsyncIterator[SdmServer]:
    async with running_sdm() as server:
        yield server


def values(meter: ModbusMeter) -> dict[str, float]:
    return {reading.measurand: reading.value for reading in meter.read(MODBUS_MEASURANDS)}


async def test_an_sdm630_reads_energy_in_wh_and_totals_its_phases(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=1234.567)
    meter = ModbusMeter(meter_config(sdm))
    try:
        await meter.refresh()
        assert meter.ok
        assert meter.read_wh() == 1_234_567
        assert values(meter) == {
            ENERGY_REGISTER: 1_234_567,
            POWER: 11040.0,
            CURRENT: 48.0,
            VOLTAGE: 230.0,
        }
        assert [r.unit for r in meter.read([ENERGY_REGISTER, POWER])] == ["Wh", "W"]
    finally:
        meter.close()


async def test_an_sdm120_reads_its_single_phase(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM120, volts=231.5, amps=10.0, watts=2315.0, kwh=2.5)
    # Registers of the other phases must not count on a single-phase meter.
    await sdm.set(SDM630.power[1], 9999.0)
    meter = ModbusMeter(meter_config(sdm, MeterModel.SDM120))
    try:
        await meter.refresh()
        assert values(meter) == {
            ENERGY_REGISTER: 2500,
            POWER: 2315.0,
            CURRENT: 10.0,
            VOLTAGE: 231.5,
        }
    finally:
        meter.close()


async def test_a_silent_meter_keeps_its_last_good_reading_and_recovers(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=10.0)
    meter = ModbusMeter(meter_config(sdm))
    health: list[bool] = []
    meter.on_health(health.append)
    try:
        await meter.refresh()
        await sdm.stop()
        await meter.refresh()
        assert not meter.ok
        assert meter.read_wh() == 10_000
        await meter.refresh()
        assert health == [False]  # reported once, not at every poll
        await sdm.set(SDM630.import_energy_kwh, 10.5)
        await sdm.start()
        await meter.refresh()
        assert meter.ok
        assert meter.read_wh() == 10_500
        assert health == [False, True]
    finally:
        meter.close()


@pytest.mark.parametrize("garbage", [float("nan"), 9.0], ids=["nan", "backwards"])
async def test_a_meter_answering_garbage_is_a_failure(sdm: SdmServer, garbage: float) -> None:
    await sdm.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=10.0)
    meter = ModbusMeter(meter_config(sdm))
    try:
        await meter.refresh()
        await sdm.set(SDM630.import_energy_kwh, garbage)
        await meter.refresh()
        assert not meter.ok
        assert meter.read_wh() == 10_000
        await sdm.set(SDM630.import_energy_kwh, 10.25)
        await meter.refresh()
        assert meter.ok
        assert meter.read_wh() == 10_250
    finally:
        meter.close()


async def test_the_meter_notices_by_itself_that_it_went_silent(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=1.0)
    meter = ModbusMeter(meter_config(sdm))
    silent = asyncio.Event()
    meter.on_health(lambda ok: None if ok else silent.set())
    await meter.refresh()
    meter.start()
    try:
        await sdm.stop()
        async with asyncio.timeout(5):
            await silent.wait()
        assert meter.read_wh() == 1000
    finally:
        meter.close()
