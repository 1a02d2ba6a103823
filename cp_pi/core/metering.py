"""Meter readings in OCPP 1.6's terms, and when clock-aligned readings fall due.

Pure: the caller says what time it is. The measurand names are OCPP's (section 7.31); a meter
declares which of them it really measures, and the charge point promises no others.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
#: The current the charge point offers the vehicle on the control pilot.
CURRENT_OFFERED = "Current.Offered"

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

    def sampled_value(self, context: str) -> dict[str, str]:
        """The SampledValue of a MeterValues or StopTransaction payload."""
        value = int(self.value) if float(self.value).is_integer() else round(self.value, 1)
        return {
            "value": str(value),
            "context": context,
            "measurand": self.measurand,
            "unit": self.unit,
        }


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
