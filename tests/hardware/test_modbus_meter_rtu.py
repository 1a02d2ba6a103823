"""The Modbus meter on RTU: pymodbus's serial server and the meter's client on two
pseudo-terminals, joined like the two ends of an RS-485 line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator

import pytest
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cp_pi.config import MeterConfig, MeterKind, MeterModel
from cp_pi.hardware.meter_maps import SDM120
from cp_pi.hardware.modbus_meter import ModbusMeter
from tests.hardware.modbus_server import UNIT, words


def _pty() -> tuple[int, int]:
    """A pseudo-terminal in raw mode, (master, slave). The slave stays open here too, so the
    master never reads end-of-line while the serial port on it opens and closes."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave


class Line:
    """Two pseudo-terminals whose master ends copy to each other: a serial cable on loopback."""

    def __init__(self) -> None:
        self._meter_side, self._meter_slave = _pty()
        self._client_side, self._client_slave = _pty()
        self.meter_device = os.ttyname(self._meter_slave)
        self.client_device = os.ttyname(self._client_slave)
        loop = asyncio.get_running_loop()
        loop.add_reader(self._meter_side, self._copy, self._meter_side, self._client_side)
        loop.add_reader(self._client_side, self._copy, self._client_side, self._meter_side)

    @staticmethod
    def _copy(source: int, target: int) -> None:
        # An end not open yet, or closed: the bytes are lost, as on a line.
        with contextlib.suppress(OSError):
            os.write(target, os.read(source, 1024))

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self._meter_side, self._client_side):
            loop.remove_reader(fd)
        for fd in (self._meter_side, self._client_side, self._meter_slave, self._client_slave):
            os.close(fd)


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    joined = Line()
    yield joined
    joined.close()


async def test_an_sdm120_on_rtu_reads_energy_in_wh(line: Line) -> None:
    registers = [0] * 0x60
    for address, value in (
        (SDM120.voltage[0], 230.0),
        (SDM120.current[0], 8.0),
        (SDM120.power[0], 1840.0),
        (SDM120.import_energy_kwh, 42.5),
    ):
        registers[address : address + 2] = words(value)
    device = SimDevice(UNIT, simdata=[SimData(0, values=registers, datatype=DataType.REGISTERS)])
    server = ModbusSerialServer(device, port=line.meter_device, baudrate=9600)
    await server.serve_forever(background=True)
    meter = ModbusMeter(
        MeterConfig(
            kind=MeterKind.MODBUS,
            model=MeterModel.SDM120,
            port=line.client_device,
            baudrate=9600,
            unit=UNIT,
            timeout=1.0,
        )
    )
    try:
        await meter.refresh()
        assert meter.ok
        assert meter.read_wh() == 42_500
        assert [r.value for r in meter.read(["Power.Active.Import", "Voltage"])] == [1840.0, 230.0]
    finally:
        meter.close()
        await server.shutdown()
