"""Every CALL the charge point sends, in the order it was decided, one at a time.

Transaction messages (StartTransaction, StopTransaction, transaction MeterValues) are written to
the store before they are sent and removed only once the central system answered, so neither a
dropped link nor a crash loses them (OCPP 1.6 section 3.7). Other messages are volatile: sent when
the link is up, dropped when it is down (statuses and heartbeats are sent fresh on reconnect).

Which CALL goes out next, and what an answer, a CALLERROR or silence does to it, is decided by
:class:`~cp_pi.core.outbox.OutboxCore` (ordering, holds, coalescing, retries, give-up). This module
is its asyncio adapter: it keeps the store, hands out futures for volatile answers, waits for the
next message or its retry time, and sends over the live session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cp_pi.core.backlog import Backlog
from cp_pi.core.outbox import (
    Check,
    GiveUp,
    Joined,
    OutboxCore,
    Persisted,
    Queued,
    Retry,
    Volatile,
    WaitUntil,
)
from cp_pi.station.clock import Timer
from cp_pi.store import QueuedMessage, Store, transaction_name

__all__ = ["CallError", "Outbox", "RefusedAnswer", "RetryPolicy"]

log = logging.getLogger("cp_pi.outbox")


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
class RetryPolicy:
    """TransactionMessageAttempts and TransactionMessageRetryInterval, read when needed."""

    attempts: Callable[[], int]
    interval: Callable[[], float]

    def current(self) -> Retry:
        """The values configured now: a change applies from the next failure."""
        return Retry(attempts=self.attempts(), interval=self.interval())


AnswerHandler = Callable[[QueuedMessage, dict[str, Any]], Awaitable[None] | None]
Answer = asyncio.Future[dict[str, Any]]


class Outbox:
    """The outbox's rules (:class:`OutboxCore`) driven over asyncio, the store and a session.

    ``wall`` is the charge point's clock, which its messages' timestamps come from: the backlog's
    "the oldest had waited" is measured on it, not on a system clock it may have corrected.
    ``timer`` times the retries (the event loop's clock, unless a test moves one by hand).
    """

    def __init__(
        self,
        store: Store,
        retry: RetryPolicy,
        *,
        wall: Callable[[], datetime],
        timer: Timer,
        on_answer: AnswerHandler | None = None,
    ) -> None:
        self.store = store
        self.retry = retry
        #: Told of every answered transaction message (to learn transaction ids, idTagInfo).
        self.on_answer = on_answer
        self._wall = wall
        self._timer = timer
        self._core = OutboxCore.recovered(message.seq for message in store.outbox())
        self._answers: dict[Volatile, Answer] = {}
        self._changed = asyncio.Event()
        self._backlog = Backlog()

    @property
    def pending_transaction_messages(self) -> int:
        return self._core.pending_transaction_messages

    def send_transaction_message(
        self, action: str, payload: dict[str, Any], *, transaction_ref: str | None
    ) -> int:
        """Persist, then queue; delivered in order whenever the link allows."""
        seq = self.store.enqueue(action, payload, transaction_ref=transaction_ref)
        self._core.queue_transaction_message(seq)
        self._changed.set()
        return seq

    def send(self, action: str, payload: dict[str, Any]) -> Answer:
        """Queue a volatile CALL; the future fails with ConnectionError when the link is down.

        A Heartbeat already waiting (not yet sent) is shared instead of queueing another: its
        answer is as fresh as a second one would be. A StatusNotification or MeterValues
        replaces the waiting one of its connector, and goes to the back of the queue (behind a
        StopTransaction queued meanwhile); both callers get the one answer.
        """
        outcome = self._core.queue(action, payload)
        if isinstance(outcome, Joined):
            return self._answers[outcome.entry]
        if isinstance(outcome, Queued):
            if outcome.replaces is not None:
                answer = self._answers.pop(outcome.replaces)
            else:
                answer = asyncio.get_running_loop().create_future()
            self._answers[outcome.entry] = answer
            self._changed.set()
            return answer
        answer = asyncio.get_running_loop().create_future()
        _fail(answer, ConnectionError(f"{action} not sent: {outcome.reason}"))
        return answer

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep what is queued in the block back until it ends (a CALLRESULT is on its way)."""
        hold = self._core.hold()
        try:
            yield
        finally:
            self._core.release(hold)
            self._changed.set()

    async def drained(self) -> None:
        """Wait until nothing is queued (used before a reset reboots the charge point)."""
        while not self._core.empty:
            self._changed.clear()
            await self._changed.wait()

    @property
    def online(self) -> bool:
        return self._core.online

    def go_online(self) -> None:
        """The link is up: volatile messages are accepted again (delivered by :meth:`deliver`)."""
        self._core.went_online()

    def go_offline(self) -> None:
        for entry in self._core.went_offline():
            answer = self._answers.pop(entry, None)
            if answer is not None:
                _fail(answer, ConnectionError(f"{entry.action}: link lost"))
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
                if isinstance(entry, Volatile):
                    await self._deliver_volatile(sender, entry)
                else:
                    await self._deliver_persisted(sender, entry)
        finally:
            self.go_offline()

    async def _next(self) -> Volatile | Persisted | None:
        """The next CALL to send, waiting for one to be queued or for its retry time."""
        while self._core.online:
            step = self._core.next_to_send(self._timer.time())
            if isinstance(step, Volatile | Persisted):
                return step
            self._changed.clear()
            alarm = (
                self._timer.call_at(step.time, self._changed.set)
                if isinstance(step, WaitUntil)
                else None
            )
            try:
                await self._changed.wait()
            finally:
                if alarm is not None:
                    alarm.cancel()
        return None

    async def _deliver_volatile(self, sender: Sender, entry: Volatile) -> None:
        try:
            result = await sender.send_call(entry.action, entry.payload)
        except (CallError, TimeoutError) as error:
            log.warning("%s was not answered: %s", entry.action, error)
            answer = self._answers.pop(entry, None)
            if answer is not None:
                _fail(answer, error)
        else:
            answer = self._answers.pop(entry, None)
            if answer is not None and not answer.done():
                answer.set_result(result)
        self._done(entry)

    async def _deliver_persisted(self, sender: Sender, entry: Persisted) -> None:
        message = self.store.next_message()
        check = self._core.check(entry, message)
        if check is Check.GONE:  # the store is the truth
            self._changed.set()
            return
        assert message is not None  # only GONE comes without a message
        if check is Check.PROVISIONAL:
            # Its StartTransaction was discarded unanswered: the central system never gave this
            # transaction an id, and one it did not give is never sent.
            log.error(
                "%s discarded: the central system never gave its transaction an id",
                message.action,
            )
            self.store.remove(message.seq)
            self._changed.set()
            return
        try:
            result = await sender.send_call(message.action, message.payload)
            if self.on_answer is not None:
                outcome = self.on_answer(message, result)
                if outcome is not None:
                    await outcome
        except TimeoutError:
            # Silence on a live link is not the central system failing to process the message:
            # it is kept, sent again after the retry interval, and not counted as an attempt.
            retry = self._core.timed_out(entry, retry=self.retry.current(), now=self._timer.time())
            log.warning(
                "%s not answered in time; sending it again in %.0f s", message.action, retry.wait
            )
            return
        except (CallError, RefusedAnswer) as error:
            attempts = self.store.record_attempt(message.seq)
            decision = self._core.failed(
                entry, attempts=attempts, retry=self.retry.current(), now=self._timer.time()
            )
            name = transaction_name(message.payload.get("transactionId"), message.transaction_ref)
            if isinstance(decision, GiveUp):
                log.error(
                    "%s of %s discarded after %d attempts: %s",
                    message.action,
                    name,
                    attempts,
                    error,
                )
                self.store.remove(message.seq)
                self._changed.set()
                return
            log.warning(
                "%s of %s: attempt %d failed (%s); retrying in %.0f s",
                message.action,
                name,
                attempts,
                error,
                decision.wait,
            )
            return
        self.store.remove(message.seq)
        delivered = self._backlog.delivered(message, self._wall())
        if delivered is not None:
            log.info("%s", delivered.line())
        self._done(entry)

    def _done(self, entry: Volatile | Persisted) -> None:
        self._core.done(entry)
        self._changed.set()


def _fail(answer: Answer, error: BaseException) -> None:
    if not answer.done():
        answer.set_exception(error)
        answer.exception()  # a fire-and-forget caller must not leave it "never retrieved"
