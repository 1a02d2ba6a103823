"""Hardware without an energy meter still charges, at 0 Wh."""

from __future__ import annotations

from cp_pi.hardware.meter import EnergyMeter, NoMeter


def test_no_meter_reads_zero() -> None:
    meter: EnergyMeter = NoMeter()

    assert meter.read_wh() == 0
