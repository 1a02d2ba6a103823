"""The Modbus meter against pymodbus's own server on loopback TCP, holding SDM registers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cp_pi.config import MeterModel
from cp_pi.core.metering import ENERGY_REGISTER, POWER, Reading
from cp_pi.hardware.meter_maps import SDM120, SDM630
from cp_pi.hardware.modbus_meter import CURRENT, VOLTAGE, ModbusMeter
from tests.hardware.modbus_server import SdmServer, meter_config, running_sdm


@pytest.fixture
async def sdm() -> AsyncIterator[SdmServer]:
    async with running_sdm() as server:
        yield server


async def test_an_sdm630_reads_energy_in_wh_and_each_phase(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=1234.567)
    for phase, (volts, amps, watts) in enumerate([(229.5, 15.5, 3557.3), (231.0, 14.0, 3234.0)]):
        await sdm.set(SDM630.voltage[phase], volts)
        await sdm.set(SDM630.current[phase], amps)
        await sdm.set(SDM630.power[phase], watts)
    meter = ModbusMeter(meter_config(sdm))
    try:
        await meter.refresh()
        assert meter.ok
        assert meter.read_wh() == 1_234_567
        assert meter.read([ENERGY_REGISTER, POWER]) == [
            Reading(ENERGY_REGISTER, 1_234_567, "Wh"),
            Reading(POWER, 10471.3, "W"),  # the phases' sum: the connector's total
        ]
        assert meter.read([CURRENT, VOLTAGE]) == [
            Reading(CURRENT, 15.5, "A", "L1"),
            Reading(CURRENT, 14.0, "A", "L2"),
            Reading(CURRENT, 16.0, "A", "L3"),
            Reading(VOLTAGE, 229.5, "V", "L1-N"),
            Reading(VOLTAGE, 231.0, "V", "L2-N"),
            Reading(VOLTAGE, 230.0, "V", "L3-N"),
        ]
        assert meter.read([f"{POWER}.L2", f"{VOLTAGE}.L3-N"]) == [
            Reading(POWER, 3234.0, "W", "L2"),
            Reading(VOLTAGE, 230.0, "V", "L3-N"),
        ]
        assert {f"{CURRENT}.L3", f"{POWER}.L1", f"{VOLTAGE}.L2-N"} < meter.measurands
    finally:
        meter.close()


async def test_an_sdm120_reads_its_single_phase(sdm: SdmServer) -> None:
    await sdm.set_phases(SDM120, volts=231.5, amps=10.0, watts=2315.0, kwh=2.5)
    # Registers of the other phases must not count on a single-phase meter.
    await sdm.set(SDM630.power[1], 9999.0)
    meter = ModbusMeter(meter_config(sdm, MeterModel.SDM120))
    try:
        await meter.refresh()
        assert meter.read([ENERGY_REGISTER, POWER, CURRENT, VOLTAGE]) == [
            Reading(ENERGY_REGISTER, 2500, "Wh"),
            Reading(POWER, 2315.0, "W"),
            Reading(CURRENT, 10.0, "A", "L1"),
            Reading(VOLTAGE, 231.5, "V", "L1-N"),
        ]
        assert f"{CURRENT}.L1" in meter.measurands
        assert not {f"{CURRENT}.L2", f"{POWER}.L3", f"{VOLTAGE}.L2-N"} & meter.measurands
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
