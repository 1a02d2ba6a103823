"""`cp-pi check-wiring`'s look at each connector's energy meter: one reading, taken now.

Harmless (nothing is driven), so it runs before the question. A meter that does not answer, or
answers garbage, fails with what to check on its line: the RS-485 pair and its adapter, or the
network path to a Modbus TCP meter.
"""

from __future__ import annotations

from collections.abc import Callable

from cp_pi.config import ConnectorConfig, MeterConfig, MeterKind
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.wiring.pin_map import Header
from cp_pi.wiring.trial import Check, Verdict

#: The Pi's own UART (GPIO14 TXD, GPIO15 RXD), as Raspberry Pi OS names it.
PI_UART_DEVICES = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")
PI_UART_TXD, PI_UART_RXD = 14, 15

CHECK = "meter answers"


def describe(meter: MeterConfig, kind: MeterKind) -> str:
    """The meter as the installer finds it: its model and where it is on its bus."""
    if kind is MeterKind.SIMULATED:
        return "simulated meter of the bench rig"
    model = (meter.model or "").upper()
    if meter.host is not None:
        return f"{model} at Modbus address {meter.unit}, Modbus TCP {meter.host}:{meter.port}"
    return (
        f"{model} at Modbus address {meter.unit} on {meter.port}"
        f" ({meter.baudrate} baud, parity {meter.parity})"
    )


def _advice(meter: MeterConfig, kind: MeterKind, where: Header) -> str:
    if kind is MeterKind.SIMULATED:
        return "the rig's meter bus is cut (fault meter_offline): clear the fault"
    if meter.host is not None:
        return (
            f"check that {meter.host}:{meter.port} is reachable from the Pi (network cable,"
            f" gateway powered), and that the meter behind it answers Modbus address {meter.unit}"
        )
    adapter = (
        f"the transceiver on the Pi's UART ({where(PI_UART_TXD)} TXD, {where(PI_UART_RXD)} RXD)"
        if meter.port in PI_UART_DEVICES
        else f"the USB RS-485 adapter at {meter.port}"
    )
    return (
        f"check the RS-485 pair (A to A, B to B; swapped, nothing answers), the 120 ohm"
        f" termination at both ends of the line, the meter's supply and {adapter}; on the meter,"
        f" its address, baud rate and parity must match meter.unit ({meter.unit}),"
        f" meter.baudrate ({meter.baudrate}) and meter.parity ({meter.parity})"
    )


async def meter_checks(
    connector: ConnectorHardware,
    config: ConnectorConfig,
    *,
    mock_pins: bool,
    where: Header,
    say: Callable[[str], None],
) -> list[Check]:
    """Read the meter once; no check where no meter is configured."""
    kind = config.meter.resolved(mock_pins=mock_pins)
    if kind is MeterKind.NONE:
        return []
    number, meter = connector.connector_id, connector.meter
    name = describe(config.meter, kind)
    await meter.refresh()
    if meter.ok:
        say(f"connector {number}: meter: {name}: {meter.read_wh()} Wh")
        return [Check(number, CHECK, Verdict.PASS)]
    say(f"connector {number}: meter: {name}: no reading ({meter.problem})")
    return [
        Check(
            number,
            CHECK,
            Verdict.FAIL,
            f"no sane reading from the {name}: {_advice(config.meter, kind, where)}",
        )
    ]
