"""What the central system remembers: frames in order, transactions, meter values.

Tests and the demo prove behaviour from this record ("StopTransaction came after the
CALLRESULT"), so frames are kept as they crossed the wire, malformed ones included, and a
waiter wakes on each new one instead of polling. A central system that serves for days keeps
only the newest frames; positions in the record stay those of the whole history, so a mark
taken before old frames are forgotten still means "from here on".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from cp_pi.ocpp16.frames import CALL, CALLERROR, CALLRESULT
from cp_pi.ocpp16.wire import redact, redact_raw

log = logging.getLogger("cp_pi.csms")

Direction = Literal["rx", "tx"]


# eq=False: a record is one event; `frames.index(record)` must find that event, not a twin.
# Slots: a busy central system holds tens of thousands of these.
@dataclass(frozen=True, eq=False, slots=True)
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
        return f"{head} unparsed {redact_raw(self.raw)!r:.300}"


@dataclass(frozen=True)
class Misbehaviour:
    """One CALL the central system will not handle: a CALLERROR `code`, or silence when None."""

    code: str | None


StartKey = tuple[str, int, str, str, int]
"""(charge point, connector, idTag, timestamp, meterStart): what makes two StartTransactions one."""


@dataclass(slots=True)
class CsmsTransaction:
    """A transaction as the central system holds it, as the charge point reported it; timestamps
    are the charge point's. The charge point's own record is ``cp_pi.store.TransactionRecord``."""

    charge_point_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    meter_stop: int | None = None
    stopped_at: str | None = None
    reason: str | None = None
    """As sent; OCPP reads an absent reason as "Local"."""


@dataclass(frozen=True, slots=True)
class MeterValuesRecord:
    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    meter_value: list[dict[str, Any]] = field(default_factory=list)


class RecentFrames(Sequence[FrameRecord]):
    """The newest frames, each at its position among every frame ever recorded.

    `len()` is the position the next frame will take (the mark callers pass as `after=`), not
    how many frames are kept; indexing, slicing and `index()` speak in the same positions, and
    iteration yields the kept frames. Asking for a forgotten position is an IndexError.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a frame limit must be at least 1, not {limit}")
        self._kept: deque[FrameRecord] = deque(maxlen=limit)
        self.forgotten = 0
        """How many frames dropped out: the position of the oldest frame still kept."""

    def append(self, entry: FrameRecord) -> None:
        if len(self._kept) == self._kept.maxlen:
            self.forgotten += 1
        self._kept.append(entry)

    def __len__(self) -> int:
        return self.forgotten + len(self._kept)

    def __iter__(self) -> Iterator[FrameRecord]:
        return iter(self._kept)

    def __reversed__(self) -> Iterator[FrameRecord]:
        return reversed(self._kept)

    @overload
    def __getitem__(self, index: int) -> FrameRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[FrameRecord]: ...

    def __getitem__(self, index: int | slice) -> FrameRecord | list[FrameRecord]:
        if isinstance(index, slice):
            return [self[p] for p in range(len(self))[index] if p >= self.forgotten]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"no frame at position {index}; the next is {len(self)}")
        if position < self.forgotten:
            raise IndexError(f"frame {position} is forgotten; the oldest kept is {self.forgotten}")
        return self._kept[position - self.forgotten]

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        # Only the kept frames are looked at: a long history is not walked for each search.
        positions = range(len(self))[start:stop]
        for position, entry in enumerate(self._kept, start=self.forgotten):
            if entry is value and position in positions:
                return position
        raise ValueError("not among the kept frames")


class FrameJournal:
    """The frames in order, and a way to wait for one that may not have arrived yet.

    `limit` bounds how many frames are kept, the oldest forgotten first; None keeps them all.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.frames = RecentFrames(limit)
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
        # Checked first: building the summary of every frame, unseen, costs a busy fleet dear.
        if log.isEnabledFor(logging.INFO):
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
        """The first record at position >= `after` that matches, waiting for it if needed.

        Frames forgotten before they were looked at are skipped: the search goes on from the
        oldest one kept. Only a limit smaller than the frames arriving while a waiter sleeps
        could hide the one it waits for.
        """
        position = after
        try:
            async with asyncio.timeout(timeout):
                while True:
                    position = max(position, self.frames.forgotten)
                    while position < len(self.frames):
                        entry = self.frames[position]
                        position += 1
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
