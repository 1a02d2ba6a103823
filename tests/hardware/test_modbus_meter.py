"""The Modbus meter against pymodbus's own server on loopback TCP, holding SDM registers."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cp_pi.config import MeterConfig, MeterKind, MeterModel
from cp_pi.core.metering import ENERGY_REGISTER, POWER
from cp_pi.hardware.meter_maps import SDM120, SDM630, RegisterMap
from cp_pi.hardware.modbus_meter import CURRENT, MODBUS_MEASURANDS, VOLTAGE, ModbusMeter

UNIT = 3


def _words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


class SdmServer:
    """A pymodbus TCP server whose input registers read like an SDM meter's; the registers
    outlive a stop, as a meter's do while its bus is down."""

    def __init__(self, port: int) -> None:
        self.registers = [0] * 0x60
        self.port = port
        self._server: ModbusTcpServer | None = None

    async def set(self, address: int, value: float) -> None:
        words = _words(value)
        self.registers[address : address + 2] = words
        if self._server is not None:
            await self._server.async_setValues(UNIT, 4, address, words)

    async def set_phases(
        self, registers: RegisterMap, volts: float, amps: float, watts: float, kwh: float
    ) -> None:
        for address in registers.voltage:
            await self.set(address, volts)
        for address in registers.current:
            await self.set(address, amps)
        for address in registers.power:
            await self.set(address, watts)
        await self.set(registers.import_energy_kwh, kwh)

    async def start(self) -> None:
        registers = SimData(0, values=list(self.registers), datatype=DataType.REGISTERS)
        device = SimDevice(UNIT, simdata=[registers])
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def sdm() -> AsyncIterator[SdmServer]:
    server = SdmServer(_free_port())
    await server.start()
    yield server
    await server.stop()


def meter_config(server: SdmServer, model: MeterModel = MeterModel.SDM630) -> MeterConfig:
    return MeterConfig(
        kind=MeterKind.MODBUS,
        model=model,
        host="127.0.0.1",
        port=server.port,
        unit=UNIT,
        poll_interval=0.05,
        timeout=0.3,
    )


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
