"""Where the meter readings of a connector come from.

The controller needs a cumulative energy register in Wh (OCPP's meterStart/meterStop), and may
report more: a meter declares the OCPP measurands it really measures, and the charge point accepts
only those in its MeterValues configuration keys. A Modbus meter would add Voltage, Current.Import
and Power.Active.Import here. Hardware without an energy meter still charges: :class:`NoMeter`
reads 0 Wh throughout, so transactions start and stop normally and report no energy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from cp_pi.core.metering import ENERGY_REGISTER, Reading


class EnergyMeter(Protocol):
    @property
    def measurands(self) -> frozenset[str]:
        """The OCPP measurands this meter measures (always the energy register)."""
        ...

    def read_wh(self) -> int:
        """The cumulative energy register, in Wh; never decreases."""
        ...

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        """One reading of each of ``measurands`` that this meter measures, in that order."""
        ...


class NoMeter:
    """A charge point without a meter: the energy register reads 0 Wh, and nothing else is read."""

    @property
    def measurands(self) -> frozenset[str]:
        return frozenset({ENERGY_REGISTER})

    def read_wh(self) -> int:
        return 0

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        return [Reading(ENERGY_REGISTER, 0, "Wh") for m in measurands if m == ENERGY_REGISTER]
