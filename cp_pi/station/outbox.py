"""Every CALL the charge point sends, in the order it was decided, one at a time.

Transaction messages (StartTransaction, StopTransaction, transaction MeterValues) are written to
the store before they are sent and removed only once the central system answered, so neither a
dropped link nor a crash loses them (OCPP 1.6 section 3.7). Other messages are volatile: sent when
the link is up, dropped when it is down (statuses and heartbeats are sent fresh on reconnect).

Both kinds share one queue so that order is kept across kinds: a StatusNotification(Finishing)
never overtakes the StopTransaction before it. While a request from the central system is being
handled, what is queued meanwhile is *held*, so what the handler decides goes out after its
CALLRESULT (OCPP's order for UnlockConnector: conf, StopTransaction, StatusNotification). A hold
keeps back only what was queued while it lasted: a central system that always has a request in
hand cannot starve the queue.

A central system that does not answer cannot make the queue grow or stall a driver: a transaction
message that timed out on a live link is kept and sent again (only a CALLERROR, or an answer the
charge point cannot take, counts against TransactionMessageAttempts); Authorize, which a driver
waits for, goes ahead of the queue; volatile messages are bounded and coalesce, the newest
StatusNotification or MeterValues of a connector replacing one that still waits.
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
#: Volatile CALLs where only the newest per connector matters: it replaces one still waiting.
LATEST_PER_CONNECTOR = frozenset({"StatusNotification", "MeterValues"})
#: Volatile CALLs a driver is waiting for: sent before anything else queued.
URGENT_ACTIONS = frozenset({"Authorize"})
#: At most this many volatile CALLs wait; beyond it a new one fails at once.
VOLATILE_LIMIT = 32
#: The ``transactionId`` of a transaction message written before the central system gave the id;
#: replaced once StartTransaction is answered, and never sent.
PROVISIONAL_TRANSACTION_ID = -1


class CallError(Exception):
    """The central system answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class RefusedAnswer(Exception):
    """An answer the charge point cannot take (a value it cannot store): the CALL failed."""


class Sender(Protocol):
    """What the outbox needs of a live session: send one CALL, return the CALLRESULT payload."""

    async def send_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class _Hold:
    """A request being handled; what is queued meanwhile waits until it is released."""

    released: bool = False


@dataclass
class _Volatile:
    action: str
    payload: dict[str, Any]
    answer: asyncio.Future[dict[str, Any]]
    #: The holds in force when it was queued: it goes out once all are released.
    after: tuple[_Hold, ...] = ()


@dataclass
class _Persisted:
    seq: int
    #: Loop time before which the message is not sent again (after a failed attempt).
    retry_at: float = 0.0
    after: tuple[_Hold, ...] = ()


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
    _holds: list[_Hold] = field(default_factory=list)
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
        self._queue.append(_Persisted(seq, after=tuple(self._holds)))
        self._changed.set()
        return seq

    def send(self, action: str, payload: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Queue a volatile CALL; the future fails with ConnectionError when the link is down.

        A Heartbeat already waiting (not yet sent) is shared instead of queueing another: its
        answer is as fresh as a second one would be. A StatusNotification or MeterValues
        replaces the waiting one of its connector, and goes to the back of the queue (behind a
        StopTransaction queued meanwhile); both callers get the one answer.
        """
        waiting = self._waiting(action, payload) if self._online else None
        if waiting is not None and action in COALESCED_ACTIONS:
            return waiting.answer
        if waiting is not None:
            self._remove(waiting)
            answer = waiting.answer
        else:
            answer = asyncio.get_running_loop().create_future()
        if not self._online or self._volatile_count() >= VOLATILE_LIMIT:
            reason = "no link to the CSMS" if not self._online else "too many CALLs waiting"
            answer.set_exception(ConnectionError(f"{action} not sent: {reason}"))
            answer.exception()  # a fire-and-forget caller must not leave it "never retrieved"
            return answer
        self._queue.append(_Volatile(action, payload, answer, tuple(self._holds)))
        self._changed.set()
        return answer

    def _waiting(self, action: str, payload: dict[str, Any]) -> _Volatile | None:
        """The queued, not yet sent, CALL a new one of ``action`` coalesces with, if any."""
        if action not in COALESCED_ACTIONS | LATEST_PER_CONNECTOR:
            return None
        for entry in self._queue:
            if (
                isinstance(entry, _Volatile)
                and entry is not self._in_flight
                and entry.action == action
                and (
                    action in COALESCED_ACTIONS
                    or entry.payload.get("connectorId") == payload.get("connectorId")
                )
            ):
                return entry
        return None

    def _volatile_count(self) -> int:
        return sum(isinstance(entry, _Volatile) for entry in self._queue)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep what is queued in the block back until it ends (a CALLRESULT is on its way)."""
        hold = _Hold()
        self._holds.append(hold)
        try:
            yield
        finally:
            hold.released = True
            self._holds.remove(hold)
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
        """The next CALL to send: an urgent one first, else the head once its retry time came."""
        loop = asyncio.get_running_loop()
        while self._online:
            delay: float | None = None
            if self._queue:
                urgent = (
                    queued
                    for queued in self._queue
                    if isinstance(queued, _Volatile) and queued.action in URGENT_ACTIONS
                )
                entry = next(urgent, self._queue[0])
                held = any(not hold.released for hold in entry.after)
                retry_at = entry.retry_at if isinstance(entry, _Persisted) else 0.0
                if not held and retry_at <= loop.time():
                    return entry
                if not held:
                    delay = retry_at - loop.time()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._changed.wait()
        return None

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
        if message.payload.get("transactionId") == PROVISIONAL_TRANSACTION_ID:
            # Its StartTransaction was discarded unanswered: the central system never gave this
            # transaction an id, and one it did not give is never sent.
            log.error(
                "%s discarded: the central system never gave its transaction an id",
                message.action,
            )
            self.store.remove(message.seq)
            self._pop(entry)
            return
        loop = asyncio.get_running_loop()
        try:
            result = await sender.send_call(message.action, message.payload)
            if self.on_answer is not None:
                outcome = self.on_answer(message, result)
                if outcome is not None:
                    await outcome
        except TimeoutError:
            # Silence on a live link is not the central system failing to process the message:
            # it is kept, sent again after the retry interval, and not counted as an attempt.
            wait = self.retry.interval()
            log.warning("%s not answered in time; sending it again in %.0f s", message.action, wait)
            entry.retry_at = loop.time() + wait
            return
        except (CallError, RefusedAnswer) as error:
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
            entry.retry_at = loop.time() + wait
            return
        self.store.remove(message.seq)
        self._backlog.delivered(message)
        self._pop(entry)

    def _pop(self, entry: _Volatile | _Persisted) -> None:
        self._remove(entry)
        self._changed.set()

    def _remove(self, entry: _Volatile | _Persisted) -> None:
        for index, queued in enumerate(self._queue):
            if queued is entry:
                del self._queue[index]
                return
