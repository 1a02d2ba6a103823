"""Where each Eastron SDM meter keeps its readings: one table per model.

From the makers' Modbus protocol documents: every reading is an input register pair (function
code 04) holding a 32-bit IEEE-754 float, high word first; the address here is the protocol
address (the document's "30001" is address 0x0000). Energy is in kWh on the meter and Wh in OCPP.
"""

from __future__ import annotations

from dataclasses import dataclass

from cp_pi.config import MeterModel


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The float registers of one model; the phases are in order L1, L2, L3."""

    voltage: tuple[int, ...]
    current: tuple[int, ...]
    power: tuple[int, ...]
    import_energy_kwh: int


#: Three-phase: phase 1..3 line-to-neutral volts 30001/3/5, currents 30007/9/11, active powers
#: 30013/15/17, total import kWh 30073.
SDM630 = RegisterMap(
    voltage=(0x0000, 0x0002, 0x0004),
    current=(0x0006, 0x0008, 0x000A),
    power=(0x000C, 0x000E, 0x0010),
    import_energy_kwh=0x0048,
)

#: Single-phase: volts 30001, current 30007, active power 30013, import kWh 30073.
SDM120 = RegisterMap(
    voltage=(0x0000,), current=(0x0006,), power=(0x000C,), import_energy_kwh=0x0048
)

#: The SDM230 keeps the SDM120's single-phase layout.
SDM230 = SDM120

REGISTER_MAPS: dict[MeterModel, RegisterMap] = {
    MeterModel.SDM630: SDM630,
    MeterModel.SDM120: SDM120,
    MeterModel.SDM230: SDM230,
}
