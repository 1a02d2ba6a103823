"""Where the energy figures of a transaction come from.

The controller only needs a cumulative register in Wh (OCPP's meterStart/meterStop). Hardware
without an energy meter still charges: :class:`NoMeter` reads 0 Wh throughout, so transactions
start and stop normally and report no energy.
"""

from __future__ import annotations

from typing import Protocol


class EnergyMeter(Protocol):
    def read_wh(self) -> int:
        """The cumulative energy register, in Wh; never decreases."""
        ...


class NoMeter:
    """A charge point without a meter: every reading is 0 Wh."""

    def read_wh(self) -> int:
        return 0
