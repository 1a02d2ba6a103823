"""The line an operator looks for after an outage: the queued transaction messages went out.

When a link comes up, the transaction messages already waiting are the backlog; once the last of
them is answered, one line says how many were delivered and how long the oldest waited. The wait
is read from the messages' own timestamps, so messages queued before a restart count too, and
measured against the time those timestamps were taken from (the charge point's clock, given in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cp_pi.core.outbox import StoredMessage


@dataclass(frozen=True)
class Delivered:
    """The whole backlog went out: ``count`` messages, the oldest ``waited`` seconds old."""

    count: int
    waited: float | None

    def line(self) -> str:
        plural = "s" if self.count > 1 else ""
        waited = "" if self.waited is None else f"; the oldest had waited {duration(self.waited)}"
        return f"delivered {self.count} queued transaction message{plural}{waited}"


class Backlog:
    """The transaction messages that waited for the link, and how far their delivery got."""

    def __init__(self, waiting: Iterable[StoredMessage] = ()) -> None:
        messages = list(waiting)
        self._last = messages[-1].seq if messages else None
        self._oldest = min(filter(None, (queued_at(m.payload) for m in messages)), default=None)
        self._delivered = 0

    def delivered(self, message: StoredMessage, now: datetime) -> Delivered | None:
        """The central system answered ``message``; after the backlog's last, say so once."""
        if self._last is None:
            return None
        if message.seq <= self._last:
            self._delivered += 1
        if message.seq >= self._last and self._delivered:
            self._last = None
            waited = None if self._oldest is None else (now - self._oldest).total_seconds()
            return Delivered(self._delivered, waited)
        return None


def queued_at(payload: Mapping[str, Any]) -> datetime | None:
    """The timestamp a message carries: StartTransaction, StopTransaction, MeterValues."""
    stamp = payload.get("timestamp")
    if stamp is None and payload.get("meterValue"):
        stamp = payload["meterValue"][0].get("timestamp")
    try:
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo is not None else when.replace(tzinfo=UTC)


def duration(seconds: float) -> str:
    """A wait as an operator reads it: "4 s", "3 min 12 s", "2 h 05 min", "3 d 4 h"."""
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
