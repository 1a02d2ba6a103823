"""What the central system remembers: every frame in order, transactions, meter values.

Tests and the demo prove behaviour from this record ("StopTransaction came after the
CALLRESULT"), so frames are kept as they crossed the wire, malformed ones included, and a
waiter wakes on each new one instead of polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cp_pi.ocpp16.errors import CALL, CALLERROR, CALLRESULT
from cp_pi.ocpp16.wire import redact

log = logging.getLogger("cp_pi.csms")

Direction = Literal["rx", "tx"]


# eq=False: a record is one event; `frames.index(record)` must find that event, not a twin.
@dataclass(frozen=True, eq=False)
class FrameRecord:
    """One frame; "rx" was received from the charge point, "tx" sent to it."""

    charge_point_id: str
    direction: Direction
    time: float
    frame: list[Any]
    """The decoded JSON array; empty when the text is not one."""
    raw: str

    def is_call(self, action: str) -> bool:
        return len(self.frame) >= 4 and self.frame[0] == CALL and self.frame[2] == action

    def summary(self) -> str:
        """One line for the log: who, which way, what kind of message."""
        arrow = "->" if self.direction == "rx" else "<-"
        head = f"{self.charge_point_id} {arrow} csms"
        frame = redact(self.frame)
        kind = frame[0] if frame else None
        if kind == CALL and len(frame) >= 4:
            return f"{head} CALL {frame[2]} {frame[1]} {_compact(frame[3])}"
        if kind == CALLRESULT and len(frame) >= 3:
            return f"{head} CALLRESULT {frame[1]} {_compact(frame[2])}"
        if kind == CALLERROR and len(frame) >= 3:
            return f"{head} CALLERROR {frame[1]} {frame[2]} {_compact(frame[3:])}"
        return f"{head} unparsed {self.raw!r:.300}"


@dataclass(frozen=True)
class Misbehaviour:
    """One CALL the central system will not handle: a CALLERROR `code`, or silence when None."""

    code: str | None


@dataclass
class TransactionRecord:
    """A transaction as the charge point reported it; timestamps are the charge point's."""

    charge_point_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    meter_stop: int | None = None
    stopped_at: str | None = None
    reason: str | None = None
    """As sent; OCPP reads an absent reason as "Local"."""


@dataclass(frozen=True)
class MeterValuesRecord:
    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    meter_value: list[dict[str, Any]] = field(default_factory=list)


class FrameJournal:
    """Every frame in order, and a way to wait for one that may not have arrived yet."""

    def __init__(self) -> None:
        self.frames: list[FrameRecord] = []
        self.on_record: Callable[[FrameRecord], None] | None = None
        self._changed = asyncio.Event()

    def record(self, charge_point_id: str, direction: Direction, raw: str) -> FrameRecord:
        entry = FrameRecord(
            charge_point_id,
            direction,
            asyncio.get_running_loop().time(),
            _decode(raw),
            raw,
        )
        self.frames.append(entry)
        log.info("%s", entry.summary())
        if self.on_record is not None:
            try:
                self.on_record(entry)
            except Exception:
                # An observer's bug must not cost the charge point its connection.
                log.exception("frame observer failed")
        self.notify()
        return entry

    def notify(self) -> None:
        """Wake every waiter; each looks again at what changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    async def wait_for(
        self, match: Callable[[FrameRecord], bool], *, after: int, timeout: float, what: str
    ) -> FrameRecord:
        """The first record at index >= `after` that matches, waiting for it if needed."""
        index = max(after, 0)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    while index < len(self.frames):
                        entry = self.frames[index]
                        index += 1
                        if match(entry):
                            return entry
                    await self.changed()
        except TimeoutError:
            raise TimeoutError(f"no {what} within {timeout} s") from None


def _decode(raw: str) -> list[Any]:
    try:
        frame = json.loads(raw)
    except ValueError:
        return []
    return frame if isinstance(frame, list) else []


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
