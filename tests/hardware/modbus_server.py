"""pymodbus's own TCP server on loopback, holding an Eastron SDM meter's input registers."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cp_pi.config import MeterConfig, MeterKind, MeterModel
from cp_pi.hardware.meter_maps import RegisterMap

UNIT = 3


def words(value: float) -> list[int]:
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
        pair = words(value)
        self.registers[address : address + 2] = pair
        if self._server is not None:
            await self._server.async_setValues(UNIT, 4, address, pair)

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


@asynccontextmanager
async def running_sdm() -> AsyncIterator[SdmServer]:
    """A meter's server on a free loopback port, stopped at the end."""
    server = SdmServer(_free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def meter_config(server: SdmServer, model: MeterModel = MeterModel.SDM630) -> MeterConfig:
    """A Modbus meter on ``server``, polled often and quick to call it silent."""
    return MeterConfig(
        kind=MeterKind.MODBUS,
        model=model,
        host="127.0.0.1",
        port=server.port,
        unit=UNIT,
        poll_interval=0.05,
        timeout=0.3,
    )
