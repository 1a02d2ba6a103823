"""Meter readings in OCPP 1.6's terms, and when clock-aligned readings fall due.

Pure: the caller says what time it is. The measurand names are OCPP's (section 7.31); a meter
declares which of them it really measures, and the charge point promises no others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
#: The current the charge point offers the vehicle on the control pilot.
CURRENT_OFFERED = "Current.Offered"

#: The line conductors, named as the ``phase`` of an OCPP 1.6 SampledValue names them; a voltage
#: is measured against neutral, ``L1-N``.
LINE_PHASES = ("L1", "L2", "L3")
#: Phase-to-neutral, as a meter measures its voltages.
TO_NEUTRAL = "-N"

#: What a StopTransaction may carry between its Transaction.Begin and Transaction.End values.
#: The newest are kept: a long charge at a short interval must not grow the frame (or memory)
#: without bound.
TRANSACTION_DATA_SAMPLES = 48

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurand read from a meter, in the unit OCPP names for it."""

    measurand: str
    value: float
    unit: str
    #: The phase it was measured on; None for a figure of the whole connector (the energy
    #: register, the total power).
    phase: str | None = None

    @property
    def key(self) -> str:
        """How a measurand list names this reading alone (OCPP 1.6 9.1: "Voltage.L1-N")."""
        return self.measurand if self.phase is None else f"{self.measurand}.{self.phase}"

    def sampled_value(self, context: str) -> dict[str, str]:
        """The SampledValue of a MeterValues or StopTransaction payload."""
        value = int(self.value) if float(self.value).is_integer() else round(self.value, 1)
        sampled = {
            "value": str(value),
            "context": context,
            "measurand": self.measurand,
            "unit": self.unit,
        }
        if self.phase is not None:
            sampled["phase"] = self.phase
        return sampled


def per_phase(
    measurand: str, unit: str, values: Sequence[float], *, to_neutral: bool = False
) -> list[Reading]:
    """One reading per phase, ``values`` in the order L1, L2, L3."""
    suffix = TO_NEUTRAL if to_neutral else ""
    return [
        Reading(measurand, value, unit, phase + suffix)
        for phase, value in zip(LINE_PHASES, values, strict=False)
    ]


def keys_of(readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    """What each item a measurand list may hold reads as.

    A phased item (``Current.Import.L2``) is that phase's reading. A bare measurand is its
    whole-connector figure where the meter has one (the total power), else every phase it is
    measured on (OCPP 1.6 3.16.3: all phases are reported when a measurand is configured).
    """
    keyed: dict[str, list[Reading]] = {}
    phased: dict[str, list[Reading]] = {}
    for reading in readings:
        keyed[reading.key] = [reading]
        if reading.phase is not None:
            phased.setdefault(reading.measurand, []).append(reading)
    for measurand, readings_on_phases in phased.items():
        keyed.setdefault(measurand, readings_on_phases)
    return keyed


def next_aligned_instant(now: datetime, interval: int) -> datetime:
    """The first instant after ``now`` whose seconds since midnight UTC divide by ``interval``.

    OCPP's ClockAlignedDataInterval splits each day from midnight UTC; an interval that does not
    divide a day leaves a shorter last period, and the next day starts again at midnight.
    """
    if interval <= 0:
        raise ValueError("a clock-aligned interval is a positive number of seconds")
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(seconds=interval)
    periods = (now - midnight) // step + 1
    return min(midnight + periods * step, midnight + _DAY)


def timestamp(instant: datetime) -> str:
    """UTC with milliseconds and a "Z", the form every timestamp this charge point sends has."""
    text = instant.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def seconds_until(instant: datetime, now: datetime) -> float:
    return max(0.0, (instant - now).total_seconds())


@dataclass
class TransactionData:
    """The meter values a StopTransaction carries (StopTxnSampledData, StopTxnAlignedData).

    Kept in memory only: a transaction that outlives its process ends with PowerLoss and the last
    stored energy reading, without transactionData.
    """

    begin: dict[str, Any] | None = None
    samples: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=TRANSACTION_DATA_SAMPLES)
    )

    def add(self, meter_value: dict[str, Any]) -> None:
        self.samples.append(meter_value)

    def with_end(self, end: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Begin, the samples in order, then End: the transactionData of StopTransaction."""
        entries = [self.begin] if self.begin is not None else []
        entries.extend(self.samples)
        if end is not None:
            entries.append(end)
        return entries
