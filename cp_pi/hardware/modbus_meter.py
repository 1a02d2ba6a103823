"""An Eastron SDM energy meter on Modbus TCP or RTU, read with pymodbus's asyncio client.

The client never blocks the loop: each poll is two awaited requests (the voltage, current and
power block, then the import register). A reading that is not a number, or an energy register
lower than the last good one, is garbage: the poll fails like a silent meter, so the last good
reading stays and the meter reports itself not ok until a sane reading comes back.

Each phase's voltage (to neutral), current and active power is a reading of its own; the total
power (the sum of the phases) is the whole connector's figure. A single-phase meter measures L1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from cp_pi.config import MeterConfig
from cp_pi.core.metering import CURRENT, ENERGY_REGISTER, POWER, VOLTAGE, Reading, per_phase
from cp_pi.hardware.meter import PolledMeter
from cp_pi.hardware.meter_maps import REGISTER_MAPS, RegisterMap

__all__ = ["CURRENT", "MODBUS_MEASURANDS", "VOLTAGE", "MeterGarbage", "ModbusMeter"]

#: The measurands every model measures (each phase's too, as the model has them).
MODBUS_MEASURANDS = frozenset({ENERGY_REGISTER, POWER, CURRENT, VOLTAGE})

_FLOAT = AsyncModbusTcpClient.DATATYPE.FLOAT32


class MeterGarbage(ValueError):
    """The meter answered, but not with a reading that can be true."""


class ModbusMeter(PolledMeter):
    """One SDM meter at ``config.unit`` on its bus; :meth:`close` also closes the client."""

    def __init__(self, config: MeterConfig) -> None:
        if config.model is None:
            raise ValueError("a Modbus meter needs its model")
        self._map: RegisterMap = REGISTER_MAPS[config.model]
        zeros = [0.0] * len(self._map.voltage)
        super().__init__(self._readings(0, zeros, zeros, zeros), config.poll_interval)
        # pymodbus logs every failed request: a meter off its bus would write a line per poll
        # for hours. The meter logs its failure once, with pymodbus's reason, and its recovery.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self._unit = config.unit
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        # reconnect_delay=0: no reconnecting in the background; each poll connects if it must.
        if config.host is not None:
            self._client = AsyncModbusTcpClient(
                config.host,
                port=int(config.port or 502),
                timeout=config.timeout,
                retries=0,
                reconnect_delay=0,
            )
        else:
            self._client = AsyncModbusSerialClient(
                str(config.port),
                baudrate=config.baudrate,
                parity=config.parity,
                timeout=config.timeout,
                retries=0,
                reconnect_delay=0,
            )
        self._last_wh: int | None = None

    async def _floats(self, address: int, count: int) -> list[float]:
        """``count`` floats from the input registers at ``address``."""
        if not self._client.connected and not await self._client.connect():
            raise ConnectionError("no answer from the meter")
        response = await self._client.read_input_registers(
            address, count=2 * count, device_id=self._unit
        )
        if response.isError():
            raise MeterGarbage(f"the meter refused the read: {response}")
        registers = response.registers
        values = [
            float(self._client.convert_from_registers(registers[i : i + 2], _FLOAT))  # type: ignore[arg-type]
            for i in range(0, 2 * count, 2)
        ]
        if not all(math.isfinite(value) for value in values):
            raise MeterGarbage(f"not a number at register {address:#06x}")
        return values

    async def _measure(self) -> list[Reading]:
        registers = self._map
        first = min(registers.voltage)
        block = await self._floats(first, (max(registers.power) + 2 - first) // 2)

        def at(addresses: tuple[int, ...]) -> list[float]:
            return [block[(address - first) // 2] for address in addresses]

        (kwh,) = await self._floats(registers.import_energy_kwh, 1)
        wh = round(kwh * 1000)
        if wh < 0 or (self._last_wh is not None and wh < self._last_wh):
            raise MeterGarbage(f"the energy register went back to {wh} Wh from {self._last_wh} Wh")
        self._last_wh = wh
        return self._readings(wh, at(registers.voltage), at(registers.current), at(registers.power))

    @staticmethod
    def _readings(
        wh: int, volts: Sequence[float], amps: Sequence[float], watts: Sequence[float]
    ) -> list[Reading]:
        """The register, the total power, then each phase's power, current and voltage."""
        return [
            Reading(ENERGY_REGISTER, wh, "Wh"),
            Reading(POWER, round(sum(watts), 1), "W"),
            *per_phase(POWER, "W", [round(w, 1) for w in watts]),
            *per_phase(CURRENT, "A", [round(a, 2) for a in amps]),
            *per_phase(VOLTAGE, "V", [round(v, 1) for v in volts], to_neutral=True),
        ]

    def close(self) -> None:
        super().close()
        self._client.close()
