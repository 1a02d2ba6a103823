"""The outbox's rules, driven synchronously: events in, the next CALL to send out.

Each scenario is a script, one event a line, read by :class:`Driver`:

``online`` / ``offline -> <dropped>``  the link comes up or goes down
``tx <seq>``                           a transaction message the store kept under ``seq``
``queue <Action>[:<connector>] -> <r>``  a volatile CALL (r: queued, joined, replaces, refused ...)
``hold <name>`` / ``release <name>``   a request of the central system handled, then answered
``at <t> -> <next>``                   ``next_to_send(t)``: ``#<seq>``, ``<Action>[:<c>]``,
                                       ``wait <t>`` or ``nothing``
``check <seq>|none [provisional] -> <verdict>``  the store's head read before sending
``answer``                             the CALL in flight is answered (or, volatile, failed)
``timeout at <t> -> retry at <t'>``    silence on a live link
``refused <attempts> at <t> -> <r>``   a CALLERROR (r: ``retry at <t'>`` or ``give up``)

Retries are configured as 3 attempts, 10 s interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cp_pi.core.backlog import Backlog, Delivered, duration
from cp_pi.core.outbox import (
    PROVISIONAL_TRANSACTION_ID,
    VOLATILE_LIMIT,
    Check,
    Entry,
    GiveUp,
    Hold,
    Joined,
    Nothing,
    OutboxCore,
    Persisted,
    Queued,
    Refused,
    Retry,
    RetryAt,
    Volatile,
    WaitUntil,
)
from cp_pi.store import QueuedMessage

RETRY = Retry(attempts=3, interval=10.0)


def label(step: Entry | WaitUntil | Nothing) -> str:
    if isinstance(step, Persisted):
        return f"#{step.seq}"
    if isinstance(step, Volatile):
        connector = step.payload.get("connectorId")
        return step.action if connector is None else f"{step.action}:{connector}"
    if isinstance(step, WaitUntil):
        return f"wait {step.time:g}"
    return "nothing"


def message(seq: int, transaction_id: int | None = 7, **payload: Any) -> QueuedMessage:
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return QueuedMessage(seq, "StopTransaction", payload, "ref", 0)


class Driver:
    """Plays a script against one :class:`OutboxCore`, checking every answer it gives."""

    def __init__(self, recovered: tuple[int, ...] = ()) -> None:
        self.core = OutboxCore.recovered(recovered)
        self.holds: dict[str, Hold] = {}

    def play(self, script: list[str]) -> None:
        for line in script:
            event, _, expected = (part.strip() for part in line.partition("->"))
            got = self.step(event.split())
            assert got == expected, f"{line!r}: got {got!r}"

    def step(self, words: list[str]) -> str:
        core = self.core
        match words:
            case ["online"]:
                core.went_online()
            case ["offline"]:
                return " ".join(label(entry) for entry in core.went_offline())
            case ["tx", seq]:
                core.queue_transaction_message(int(seq))
            case ["queue", call]:
                action, _, connector = call.partition(":")
                payload = {"connectorId": int(connector)} if connector else {}
                return self.queued(core.queue(action, payload))
            case ["hold", name]:
                self.holds[name] = core.hold()
            case ["release", name]:
                core.release(self.holds.pop(name))
            case ["at", now]:
                return label(core.next_to_send(float(now)))
            case ["check", seq, *provisional]:
                entry = self.persisted_in_flight()
                transaction_id = PROVISIONAL_TRANSACTION_ID if provisional else 7
                head = None if seq == "none" else message(int(seq), transaction_id)
                return core.check(entry, head).value
            case ["answer"]:
                assert core.in_flight is not None
                core.done(core.in_flight)
            case ["timeout", "at", now]:
                retry = core.timed_out(self.persisted_in_flight(), retry=RETRY, now=float(now))
                return f"retry at {retry.time:g}"
            case ["refused", attempts, "at", now]:
                outcome = core.failed(
                    self.persisted_in_flight(), attempts=int(attempts), retry=RETRY, now=float(now)
                )
                return "give up" if isinstance(outcome, GiveUp) else f"retry at {outcome.time:g}"
            case _:
                raise AssertionError(f"no such event: {words}")
        return ""

    def persisted_in_flight(self) -> Persisted:
        entry = self.core.in_flight
        assert isinstance(entry, Persisted), entry
        return entry

    @staticmethod
    def queued(outcome: Queued | Joined | Refused) -> str:
        if isinstance(outcome, Refused):
            return f"refused: {outcome.reason}"
        if isinstance(outcome, Joined):
            return f"joins {label(outcome.entry)}"
        if outcome.replaces is not None:
            return f"replaces {label(outcome.replaces)}"
        return "queued"


SCENARIOS: dict[str, list[str]] = {
    "transaction messages before fresh statuses after an outage": [
        "tx 1",
        "tx 2",
        "queue StatusNotification:1 -> refused: no link to the CSMS",
        "online",
        "queue StatusNotification:1 -> queued",
        "at 0 -> #1",
        "check 1 -> send",
        "answer",
        "at 0 -> #2",
        "check 2 -> send",
        "answer",
        "at 0 -> StatusNotification:1",
        "answer",
        "at 0 -> nothing",
    ],
    "one CALL in flight at a time": [
        "online",
        "queue Heartbeat -> queued",
        "queue BootNotification -> queued",
        "at 0 -> Heartbeat",
        "at 0 -> nothing",
        "answer",
        "at 0 -> BootNotification",
    ],
    "the answer before its follow-ups: what is queued during a request waits for it": [
        "online",
        "hold unlock",
        "tx 1",
        "queue StatusNotification:1 -> queued",
        "at 0 -> nothing",
        "release unlock",
        "at 0 -> #1",
    ],
    "a hold keeps back only what was queued while it lasted": [
        "online",
        "queue Heartbeat -> queued",
        "hold request",
        "at 0 -> Heartbeat",
        "answer",
        "queue StatusNotification:1 -> queued",
        "at 0 -> nothing",
        "hold another",
        "release request",
        "at 0 -> StatusNotification:1",
    ],
    "nested holds: a message waits for every hold in force when it was queued": [
        "online",
        "hold first",
        "hold second",
        "tx 1",
        "release second",
        "at 0 -> nothing",
        "release first",
        "at 0 -> #1",
    ],
    "a Heartbeat waiting answers for the next ones": [
        "online",
        "queue Heartbeat -> queued",
        "queue Heartbeat -> joins Heartbeat",
        "at 0 -> Heartbeat",
        "queue Heartbeat -> queued",  # the one in flight is no longer waiting
        "answer",
        "at 0 -> Heartbeat",
    ],
    "the latest status per connector, moved behind a StopTransaction queued meanwhile": [
        "online",
        "queue BootNotification -> queued",
        "at 0 -> BootNotification",
        "queue StatusNotification:1 -> queued",
        "queue StatusNotification:2 -> queued",
        "tx 5",
        "queue StatusNotification:1 -> replaces StatusNotification:1",
        "answer",
        "at 0 -> StatusNotification:2",
        "answer",
        "at 0 -> #5",
        "check 5 -> send",
        "answer",
        "at 0 -> StatusNotification:1",
    ],
    "triggered MeterValues coalesce per connector too": [
        "online",
        "queue MeterValues:1 -> queued",
        "queue MeterValues:1 -> replaces MeterValues:1",
        "queue MeterValues:2 -> queued",
    ],
    "Authorize goes ahead of transaction messages waiting for their retry": [
        "online",
        "tx 1",
        "at 0 -> #1",
        "check 1 -> send",
        "refused 1 at 0 -> retry at 10",
        "at 1 -> wait 10",
        "queue Authorize -> queued",
        "at 1 -> Authorize",
        "answer",
        "at 10 -> #1",
    ],
    "Authorize goes ahead of anything queued, but waits for its hold": [
        "online",
        "queue StatusNotification:1 -> queued",
        "hold request",
        "queue Authorize -> queued",
        "at 0 -> nothing",
        "release request",
        "at 0 -> Authorize",
    ],
    "a refused message is retried after the interval times the attempts, then given up": [
        "online",
        "tx 1",
        "tx 2",
        "at 0 -> #1",
        "check 1 -> send",
        "refused 1 at 0 -> retry at 10",
        "at 9.5 -> wait 10",
        "at 10 -> #1",
        "check 1 -> send",
        "refused 2 at 10 -> retry at 30",
        "at 29 -> wait 30",
        "at 30 -> #1",
        "check 1 -> send",
        "refused 3 at 30 -> give up",
        "at 30 -> #2",
    ],
    "a timeout on a live link waits one interval and does not count": [
        "online",
        "tx 1",
        "at 0 -> #1",
        "check 1 -> send",
        "timeout at 0 -> retry at 10",
        "at 10 -> #1",
        "check 1 -> send",
        "timeout at 10 -> retry at 20",
        "at 20 -> #1",
        "check 1 -> send",
        "refused 1 at 20 -> retry at 30",
    ],
    "a message whose transaction never got an id is never sent": [
        "online",
        "tx 1",
        "tx 2",
        "at 0 -> #1",
        "check 1 provisional -> provisional",
        "at 0 -> #2",
    ],
    "the store is the truth: a message it no longer holds is skipped": [
        "online",
        "tx 1",
        "tx 2",
        "at 0 -> #1",
        "check 2 -> gone",
        "at 0 -> #2",
        "check none -> gone",
        "at 0 -> nothing",
    ],
    "going offline drops volatile CALLs, keeps transaction messages and stops sending": [
        "online",
        "queue StatusNotification:1 -> queued",
        "tx 1",
        "queue Heartbeat -> queued",
        "at 0 -> StatusNotification:1",
        "offline -> StatusNotification:1 Heartbeat",
        "at 0 -> nothing",
        "queue Heartbeat -> refused: no link to the CSMS",
        "online",
        "at 0 -> #1",
    ],
    "a message waiting for its retry keeps its time across a reconnect": [
        "online",
        "tx 1",
        "at 0 -> #1",
        "check 1 -> send",
        "refused 1 at 0 -> retry at 10",
        "offline",
        "online",
        "at 5 -> wait 10",
    ],
    "a message in flight when the link drops is sent again on the next link": [
        "online",
        "tx 1",
        "at 0 -> #1",
        "offline",
        "online",
        "at 0 -> #1",
    ],
}


@pytest.mark.parametrize("script", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_scenario(script: list[str]) -> None:
    Driver().play(script)


def test_messages_left_by_a_previous_run_go_out_first_in_store_order() -> None:
    driver = Driver(recovered=(3, 4))
    assert driver.core.pending_transaction_messages == 2
    driver.play(["online", "queue StatusNotification:1 -> queued", "tx 5"])
    sent = []
    while not isinstance(step := driver.core.next_to_send(0), Nothing):
        assert not isinstance(step, WaitUntil)
        sent.append(label(step))
        driver.core.done(step)
    assert sent == ["#3", "#4", "StatusNotification:1", "#5"]
    assert driver.core.empty


def test_volatile_calls_are_bounded_and_the_bound_frees_as_they_go() -> None:
    driver = Driver()
    driver.play(["online"])
    for number in range(VOLATILE_LIMIT):
        driver.play([f"queue GetThing:{number} -> queued"])
    driver.play(
        [
            "queue BootNotification -> refused: too many CALLs waiting",
            "queue StatusNotification:0 -> refused: too many CALLs waiting",
            "tx 1",  # transaction messages are never refused
            "at 0 -> GetThing:0",
            "answer",
            "queue BootNotification -> queued",
        ]
    )


def test_a_status_replacing_one_waiting_is_taken_even_at_the_bound() -> None:
    driver = Driver()
    driver.play(["online", "queue StatusNotification:1 -> queued"])
    for number in range(VOLATILE_LIMIT - 1):
        driver.play([f"queue GetThing:{number} -> queued"])
    driver.play(["queue StatusNotification:1 -> replaces StatusNotification:1"])


# -- a property: whatever happens, transaction messages go out in order, each once answered -----

EVENTS = st.lists(
    st.sampled_from(
        [
            *("tx", "status", "heartbeat", "authorize", "send", "answer", "refuse", "timeout"),
            *("hold", "release", "offline", "online", "tick"),
        ]
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.integers(min_value=1, max_value=4))
def test_transaction_messages_go_out_in_order_and_each_is_answered_once(
    events: list[str], attempts_allowed: int
) -> None:
    retry = Retry(attempts=attempts_allowed, interval=5.0)
    core = OutboxCore()
    store: dict[int, int] = {}  # seq -> attempts: what the store would keep
    answered: list[int] = []
    given_up: list[int] = []
    holds: list[Hold] = []
    now = 0.0
    next_seq = 1

    def play(event: str) -> None:
        nonlocal now, next_seq
        entry = core.in_flight
        match event:
            case "tx":
                store[next_seq] = 0
                core.queue_transaction_message(next_seq)
                next_seq += 1
            case "status" | "heartbeat" | "authorize":
                action = {"status": "StatusNotification", "heartbeat": "Heartbeat"}
                core.queue(action.get(event, "Authorize"), {"connectorId": 1})
            case "send" if entry is None:
                step = core.next_to_send(now)
                if isinstance(step, Persisted):
                    head = message(min(store)) if store else None
                    assert head is not None
                    assert head.seq == step.seq  # never out of order
                    assert core.check(step, head) is Check.SEND
                elif isinstance(step, WaitUntil):
                    assert step.time > now
            case "answer" if entry is not None:
                if isinstance(entry, Persisted):
                    del store[entry.seq]
                    answered.append(entry.seq)
                core.done(entry)
            case "refuse" if isinstance(entry, Persisted):
                store[entry.seq] += 1
                outcome = core.failed(entry, attempts=store[entry.seq], retry=retry, now=now)
                if isinstance(outcome, GiveUp):
                    del store[entry.seq]
                    given_up.append(entry.seq)
                else:
                    assert outcome == RetryAt(now + 5.0 * store[entry.seq], 5.0 * store[entry.seq])
            case "timeout" if isinstance(entry, Persisted):
                core.timed_out(entry, retry=retry, now=now)
            case "hold":
                holds.append(core.hold())
            case "release" if holds:
                core.release(holds.pop(0))
            case "offline":
                core.went_offline()
            case "online":
                core.went_online()
            case "tick":
                now += 3.0

    for event in events:
        play(event)
        assert core.pending_transaction_messages == len(store)
    # Then the link stays up, every hold ends, the central system answers everything.
    for hold in holds:
        core.release(hold)
    core.went_online()
    if core.in_flight is not None:
        play("answer")
    for _ in range(10 * (len(events) + 1)):
        step = core.next_to_send(now)
        if isinstance(step, WaitUntil):
            now = step.time
            continue
        if isinstance(step, Nothing):
            break
        if isinstance(step, Persisted):
            assert core.check(step, message(min(store))) is Check.SEND
        play("answer")
    assert core.empty
    assert not store
    assert answered == sorted(answered)  # in the order they were queued
    assert sorted(answered + given_up) == list(range(1, next_seq))  # each exactly once


# -- the backlog line ------------------------------------------------------------------------------


def stamped(seq: int, when: datetime) -> QueuedMessage:
    return QueuedMessage(seq, "StopTransaction", {"timestamp": when.isoformat()}, "ref", 0)


def test_the_backlog_says_once_how_many_went_out_and_how_long_the_oldest_waited() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    backlog = Backlog([stamped(4, now - timedelta(minutes=3)), stamped(5, now)])
    assert backlog.delivered(stamped(4, now), now) is None
    done = backlog.delivered(stamped(5, now), now + timedelta(seconds=12))
    assert done == Delivered(2, 192.0)
    assert done.line() == (
        "delivered 2 queued transaction messages; the oldest had waited 3 min 12 s"
    )
    assert backlog.delivered(stamped(6, now), now) is None  # said once


def test_the_backlog_waits_are_measured_on_the_clock_the_timestamps_came_from() -> None:
    # The charge point adopted the central system's time (2026) while the system clock says 1970:
    # the wait is read against the charge point's clock, not the system's.
    adopted = datetime(2026, 6, 1, tzinfo=UTC)
    backlog = Backlog([stamped(1, adopted)])
    done = backlog.delivered(stamped(1, adopted), adopted + timedelta(seconds=4))
    assert done is not None
    assert done.line().endswith("the oldest had waited 4 s")


def test_a_backlog_of_messages_without_timestamps_says_only_how_many() -> None:
    backlog = Backlog([QueuedMessage(1, "MeterValues", {"meterValue": []}, None, 0)])
    done = backlog.delivered(QueuedMessage(1, "MeterValues", {}, None, 0), datetime.now(UTC))
    assert done is not None
    assert done.line() == "delivered 1 queued transaction message"


def test_no_backlog_no_line() -> None:
    assert Backlog().delivered(stamped(1, datetime.now(UTC)), datetime.now(UTC)) is None


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(4.4, "4 s"), (192, "3 min 12 s"), (7500, "2 h 05 min"), (273_600, "3 d 4 h"), (-3, "0 s")],
)
def test_durations_read_as_an_operator_reads_them(seconds: float, said: str) -> None:
    assert duration(seconds) == said
