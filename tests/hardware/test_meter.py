"""Hardware without an energy meter still charges, at 0 Wh."""

from __future__ import annotations

from cp_pi.core.metering import ENERGY_REGISTER, POWER, Reading
from cp_pi.hardware.meter import EnergyMeter, NoMeter


def test_no_meter_reads_zero() -> None:
    meter: EnergyMeter = NoMeter()

    assert meter.read_wh() == 0


def test_no_meter_promises_only_the_energy_register() -> None:
    meter: EnergyMeter = NoMeter()

    assert meter.measurands == {ENERGY_REGISTER}
    assert meter.read([POWER, ENERGY_REGISTER]) == [Reading(ENERGY_REGISTER, 0, "Wh")]
