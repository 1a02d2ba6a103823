"""The outbox's rules: which CALL goes out next, and what an answer, a failure or silence does.

Every CALL the charge point sends passes through one queue, in the order it was decided, one at a
time. This module decides that order; it sends nothing, reads no clock and touches no store. The
adapter (:mod:`cp_pi.station.outbox`) feeds it events (a message queued, the link up or down, an
answer, a failure, a timeout) with the time and the configured retry values as plain numbers,
and asks it what to send next.

The rules:

* Transaction messages (persisted, known here by their store ``seq``) and volatile CALLs share the
  queue, so order is kept across kinds: a StatusNotification(Finishing) never overtakes the
  StopTransaction before it. After an outage only transaction messages are left: they go out
  before the fresh statuses queued behind them.
* A *hold* (a request of the central system being handled) keeps back what is queued while it
  lasts, so what the handler decides goes out after its CALLRESULT. It keeps back only that: a
  central system that always has a request in hand cannot starve the queue.
* Authorize, which a driver waits for, goes ahead of everything queued.
* Volatile CALLs are bounded (:data:`VOLATILE_LIMIT`) and coalesce: a Heartbeat already waiting
  answers for a new one; the newest StatusNotification or MeterValues of a connector replaces one
  still waiting and goes to the back of the queue (behind a StopTransaction queued meanwhile).
* A transaction message refused (a CALLERROR, or an answer the charge point cannot take) is tried
  again after ``TransactionMessageRetryInterval`` times the attempts so far, and given up after
  ``TransactionMessageAttempts``. Silence on a live link is not a refusal: it is sent again after
  the interval without counting as an attempt.
* A transaction message whose transaction never got an id from the central system is never sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

#: Volatile CALLs that say nothing a second copy would add: one waiting in the queue answers for
#: every later request of the same action, so a burst of TriggerMessage(Heartbeat) cannot pile up.
COALESCED_ACTIONS = frozenset({"Heartbeat"})
#: Volatile CALLs where only the newest per connector matters: it replaces one still waiting.
LATEST_PER_CONNECTOR = frozenset({"StatusNotification", "MeterValues"})
#: Volatile CALLs a driver is waiting for: sent before anything else queued.
URGENT_ACTIONS = frozenset({"Authorize"})
#: At most this many volatile CALLs wait; beyond it a new one is refused at once.
VOLATILE_LIMIT = 32
#: The ``transactionId`` of a transaction message written before the central system gave the id;
#: replaced once StartTransaction is answered, and never sent.
PROVISIONAL_TRANSACTION_ID = -1


class StoredMessage(Protocol):
    """What the outbox reads of a persisted transaction message (the store's queued row)."""

    @property
    def seq(self) -> int: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(eq=False)
class Hold:
    """A request being handled; what is queued meanwhile waits until it is released."""

    released: bool = False


@dataclass(eq=False)
class Volatile:
    """A CALL sent only over the link it was queued on (statuses, heartbeats, Authorize)."""

    action: str
    payload: dict[str, Any]
    #: The holds in force when it was queued: it goes out once all are released.
    after: tuple[Hold, ...] = ()


@dataclass(eq=False)
class Persisted:
    """A transaction message; its action and payload are in the store under ``seq``."""

    seq: int
    #: The time before which it is not sent again (after a failed attempt).
    retry_at: float = 0.0
    after: tuple[Hold, ...] = ()


Entry = Volatile | Persisted


@dataclass(frozen=True)
class Retry:
    """TransactionMessageAttempts and TransactionMessageRetryInterval, as configured now."""

    attempts: int
    interval: float


# -- what the core answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """A new volatile CALL in the queue; it took the place of ``replaces``, if any."""

    entry: Volatile
    replaces: Volatile | None = None


@dataclass(frozen=True)
class Joined:
    """No new CALL: the one waiting, ``entry``, answers for it too."""

    entry: Volatile


@dataclass(frozen=True)
class Refused:
    """Not queued (the link is down, or too many CALLs wait)."""

    reason: str


@dataclass(frozen=True)
class WaitUntil:
    """Nothing to send before ``time``: the next message waits for its retry."""

    time: float


@dataclass(frozen=True)
class Nothing:
    """Nothing to send until something changes (a message queued, a hold released)."""


class Check(Enum):
    """What to do with a persisted message about to be sent, once the store was read."""

    SEND = "send"
    #: The store no longer has it at its head (the store is the truth): it leaves the queue.
    GONE = "gone"
    #: Its transaction never got an id from the central system: removed, never sent.
    PROVISIONAL = "provisional"


@dataclass(frozen=True)
class RetryAt:
    """The message stays queued and is sent again at ``time`` (after ``wait`` seconds)."""

    time: float
    wait: float


@dataclass(frozen=True)
class GiveUp:
    """The message was refused as many times as allowed: it is removed, never sent again."""


# -- the rules ------------------------------------------------------------------------------------


@dataclass
class OutboxCore:
    """The queue of CALLs to send and the one in flight, driven by events, free of any I/O."""

    _queue: deque[Entry] = field(default_factory=deque)
    _holds: list[Hold] = field(default_factory=list)
    _online: bool = False
    _in_flight: Entry | None = None

    @classmethod
    def recovered(cls, waiting: Iterable[int]) -> OutboxCore:
        """An outbox holding the transaction messages a previous run left in the store."""
        core = cls()
        core._queue.extend(Persisted(seq) for seq in waiting)
        return core

    # -- state -------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._online

    @property
    def empty(self) -> bool:
        return not self._queue

    @property
    def pending_transaction_messages(self) -> int:
        return sum(isinstance(entry, Persisted) for entry in self._queue)

    @property
    def in_flight(self) -> Entry | None:
        return self._in_flight

    # -- events ------------------------------------------------------------------------------

    def went_online(self) -> None:
        """The link is up: volatile CALLs are accepted again."""
        self._online = True

    def went_offline(self) -> list[Volatile]:
        """The link is down: the volatile CALLs waiting are dropped (returned, to be failed)."""
        self._online = False
        self._in_flight = None
        dropped = [entry for entry in self._queue if isinstance(entry, Volatile)]
        self._queue = deque(entry for entry in self._queue if isinstance(entry, Persisted))
        return dropped

    def queue_transaction_message(self, seq: int) -> Persisted:
        """A transaction message the store just kept under ``seq``: queued whatever the link."""
        entry = Persisted(seq, after=tuple(self._holds))
        self._queue.append(entry)
        return entry

    def queue(self, action: str, payload: dict[str, Any]) -> Queued | Joined | Refused:
        """A volatile CALL: queued, coalesced with one waiting, or refused."""
        if not self._online:
            return Refused("no link to the CSMS")
        waiting = self._waiting(action, payload)
        if waiting is not None and action in COALESCED_ACTIONS:
            return Joined(waiting)
        if waiting is not None:
            self._remove(waiting)
        elif self._volatile_count() >= VOLATILE_LIMIT:
            return Refused("too many CALLs waiting")
        entry = Volatile(action, payload, tuple(self._holds))
        self._queue.append(entry)
        return Queued(entry, replaces=waiting)

    def hold(self) -> Hold:
        """A request of the central system is being handled: what is queued now waits for it."""
        hold = Hold()
        self._holds.append(hold)
        return hold

    def release(self, hold: Hold) -> None:
        """Its CALLRESULT is out: what the hold kept back may go."""
        hold.released = True
        self._holds.remove(hold)

    def next_to_send(self, now: float) -> Entry | WaitUntil | Nothing:
        """The CALL to send now (it is then in flight), or how long to wait for one.

        An urgent CALL first, else the head of the queue once its holds are released and its
        retry time came. One CALL is in flight at a time, and none while the link is down.
        """
        if not self._online or self._in_flight is not None or not self._queue:
            return Nothing()
        urgent = (
            queued
            for queued in self._queue
            if isinstance(queued, Volatile) and queued.action in URGENT_ACTIONS
        )
        entry = next(urgent, self._queue[0])
        if any(not hold.released for hold in entry.after):
            return Nothing()
        if isinstance(entry, Persisted) and entry.retry_at > now:
            return WaitUntil(entry.retry_at)
        self._in_flight = entry
        return entry

    def check(self, entry: Persisted, head: StoredMessage | None) -> Check:
        """Whether ``entry``, about to be sent, still is the store's ``head`` and may be sent."""
        if head is None or head.seq != entry.seq:
            self._finish(entry)
            return Check.GONE
        if head.payload.get("transactionId") == PROVISIONAL_TRANSACTION_ID:
            self._finish(entry)
            return Check.PROVISIONAL
        return Check.SEND

    def done(self, entry: Entry) -> None:
        """The CALL is over and leaves the queue: answered, or a volatile one that failed."""
        self._finish(entry)

    def timed_out(self, entry: Persisted, *, retry: Retry, now: float) -> RetryAt:
        """No answer on a live link: sent again after the interval, not counted as an attempt."""
        self._landed(entry)
        entry.retry_at = now + retry.interval
        return RetryAt(entry.retry_at, retry.interval)

    def failed(
        self, entry: Persisted, *, attempts: int, retry: Retry, now: float
    ) -> RetryAt | GiveUp:
        """Refused for the ``attempts``-th time: tried again later, or given up."""
        if attempts >= retry.attempts:
            self._finish(entry)
            return GiveUp()
        self._landed(entry)
        wait = retry.interval * attempts
        entry.retry_at = now + wait
        return RetryAt(entry.retry_at, wait)

    # -- helpers -----------------------------------------------------------------------------

    def _waiting(self, action: str, payload: dict[str, Any]) -> Volatile | None:
        """The queued, not yet sent, CALL a new one of ``action`` coalesces with, if any."""
        if action not in COALESCED_ACTIONS | LATEST_PER_CONNECTOR:
            return None
        for entry in self._queue:
            if (
                isinstance(entry, Volatile)
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
        return sum(isinstance(entry, Volatile) for entry in self._queue)

    def _landed(self, entry: Entry) -> None:
        """Its CALL is over (a link lost meanwhile may already have ended it)."""
        if self._in_flight is entry:
            self._in_flight = None

    def _finish(self, entry: Entry) -> None:
        self._landed(entry)
        self._remove(entry)

    def _remove(self, entry: Entry) -> None:
        for index, queued in enumerate(self._queue):
            if queued is entry:
                del self._queue[index]
                return
