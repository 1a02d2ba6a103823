"""Every CALL the charge point sends, in the order it was decided, one at a time.

Transaction messages (StartTransaction, StopTransaction, transaction MeterValues) are written to
the store before they are sent and removed only once the central system answered, so neither a
dropped link nor a crash loses them (OCPP 1.6 section 3.7). Other messages are volatile: sent when
the link is up, dropped when it is down (statuses and heartbeats are sent fresh on reconnect).

Both kinds share one queue so that order is kept across kinds: a StatusNotification(Finishing)
never overtakes the StopTransaction before it. While a request from the central system is being
handled the queue is *held*, so what the handler decides goes out after its CALLRESULT (OCPP's
order for UnlockConnector: conf, StopTransaction, StatusNotification).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from cp_pi.station.backlog import Backlog
from cp_pi.store import QueuedMessage, Store, transaction_name

log = logging.getLogger("cp_pi.outbox")

TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})
#: Volatile CALLs that say nothing a second copy would add: one waiting in the queue answers for
#: every later request of the same action, so a burst of TriggerMessage(Heartbeat) cannot pile up.
COALESCED_ACTIONS = frozenset({"Heartbeat"})


class CallError(Exception):
    """The central system answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class Sender(Protocol):
    """What the outbox needs of a live session: send one CALL, return the CALLRESULT payload."""

    async def send_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class _Volatile:
    action: str
    payload: dict[str, Any]
    answer: asyncio.Future[dict[str, Any]]


@dataclass
class _Persisted:
    seq: int


@dataclass
class RetryPolicy:
    """TransactionMessageAttempts and TransactionMessageRetryInterval, read when needed."""

    attempts: Callable[[], int]
    interval: Callable[[], float]


AnswerHandler = Callable[[QueuedMessage, dict[str, Any]], Awaitable[None] | None]


@dataclass
class Outbox:
    store: Store
    retry: RetryPolicy
    #: Told of every answered transaction message (to learn transaction ids, idTagInfo).
    on_answer: AnswerHandler | None = None
    _queue: deque[_Volatile | _Persisted] = field(default_factory=deque)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _holds: int = 0
    _online: bool = False
    _in_flight: _Volatile | _Persisted | None = None
    _backlog: Backlog = field(default_factory=Backlog)

    def __post_init__(self) -> None:
        for message in self.store.outbox():
            self._queue.append(_Persisted(message.seq))

    @property
    def pending_transaction_messages(self) -> int:
        return sum(isinstance(entry, _Persisted) for entry in self._queue)

    def send_transaction_message(
        self, action: str, payload: dict[str, Any], *, transaction_ref: str | None
    ) -> int:
        """Persist, then queue; delivered in order whenever the link allows."""
        seq = self.store.enqueue(action, payload, transaction_ref=transaction_ref)
        self._queue.append(_Persisted(seq))
        self._changed.set()
        return seq

    def send(self, action: str, payload: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Queue a volatile CALL; the future fails with ConnectionError when the link is down.

        A Heartbeat already waiting (not yet sent) is shared instead of queueing another: its
        answer is as fresh as a second one would be.
        """
        if self._online and action in COALESCED_ACTIONS:
            for entry in self._queue:
                waiting = entry is not self._in_flight
                if waiting and isinstance(entry, _Volatile) and entry.action == action:
                    return entry.answer
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not self._online:
            answer.set_exception(ConnectionError(f"{action} not sent: no link to the CSMS"))
            answer.exception()  # a fire-and-forget caller must not leave it "never retrieved"
            return answer
        self._queue.append(_Volatile(action, payload, answer))
        self._changed.set()
        return answer

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep queued messages back until the block ends (a CALLRESULT is on its way)."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self._changed.set()

    async def drained(self) -> None:
        """Wait until nothing is queued (used before a reset reboots the charge point)."""
        while self._queue:
            self._changed.clear()
            await self._changed.wait()

    @property
    def online(self) -> bool:
        return self._online

    def go_online(self) -> None:
        """The link is up: volatile messages are accepted again (delivered by :meth:`deliver`)."""
        self._online = True

    def go_offline(self) -> None:
        self._online = False
        kept: deque[_Volatile | _Persisted] = deque()
        for entry in self._queue:
            if isinstance(entry, _Volatile):
                if not entry.answer.done():
                    entry.answer.set_exception(ConnectionError(f"{entry.action}: link lost"))
                    entry.answer.exception()
            else:
                kept.append(entry)
        self._queue = kept
        self._changed.set()

    async def deliver(self, sender: Sender) -> None:
        """Send queued messages over one live session until the link goes offline.

        The loop ends on :meth:`go_offline` as well as on cancellation, so that a link that
        went down stops delivery even before its task is cancelled.
        """
        self.go_online()
        self._backlog = Backlog(self.store.outbox())
        try:
            while (entry := await self._next()) is not None:
                self._in_flight = entry
                if isinstance(entry, _Volatile):
                    await self._deliver_volatile(sender, entry)
                else:
                    await self._deliver_persisted(sender, entry)
                self._in_flight = None
        finally:
            self._in_flight = None
            self.go_offline()

    async def _next(self) -> _Volatile | _Persisted | None:
        while self._online and (not self._queue or self._holds):
            self._changed.clear()
            await self._changed.wait()
        return self._queue[0] if self._online else None

    async def _deliver_volatile(self, sender: Sender, entry: _Volatile) -> None:
        try:
            result = await sender.send_call(entry.action, entry.payload)
        except (CallError, TimeoutError) as error:
            log.warning("%s was not answered: %s", entry.action, error)
            if not entry.answer.done():
                entry.answer.set_exception(error)
                entry.answer.exception()
        else:
            if not entry.answer.done():
                entry.answer.set_result(result)
        self._pop(entry)

    async def _deliver_persisted(self, sender: Sender, entry: _Persisted) -> None:
        message = self.store.next_message()
        if message is None or message.seq != entry.seq:  # the store is the truth
            self._pop(entry)
            return
        try:
            result = await sender.send_call(message.action, message.payload)
        except (CallError, TimeoutError) as error:
            attempts = self.store.record_attempt(message.seq)
            if attempts >= self.retry.attempts():
                log.error(
                    "%s of %s discarded after %d attempts: %s",
                    message.action,
                    transaction_name(message.payload.get("transactionId"), message.transaction_ref),
                    attempts,
                    error,
                )
                self.store.remove(message.seq)
                self._pop(entry)
                return
            wait = self.retry.interval() * attempts
            log.warning(
                "%s of %s: attempt %d failed (%s); retrying in %.0f s",
                message.action,
                transaction_name(message.payload.get("transactionId"), message.transaction_ref),
                attempts,
                error,
                wait,
            )
            await asyncio.sleep(wait)
            return
        if self.on_answer is not None:
            outcome = self.on_answer(message, result)
            if outcome is not None:
                await outcome
        self.store.remove(message.seq)
        self._backlog.delivered(message)
        self._pop(entry)

    def _pop(self, entry: _Volatile | _Persisted) -> None:
        if self._queue and self._queue[0] is entry:
            self._queue.popleft()
        self._changed.set()
