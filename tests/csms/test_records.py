"""The frame record: every frame, both directions, in order, malformed ones included; with a
limit, the newest frames at the positions they took in the whole history."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from ocpp.v16 import call

from cp_pi.csms.records import FrameJournal, FrameRecord
from cp_pi.csms.server import CallErrorReceived, CentralSystem

from .helpers import CP_ID, SmallChargePoint, callerror


def exchange(csms: CentralSystem, after: int = 0) -> list[tuple[str, int, str | None]]:
    """(direction, message type, action of a CALL) for each frame from `after` on."""
    return [
        (r.direction, r.frame[0], r.frame[2] if r.frame[0] == 2 else None)
        for r in csms.frames[after:]
    ]


async def test_frames_are_recorded_in_order_with_their_direction(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    await cp.boot()
    await csms.unlock_connector(CP_ID, 1)
    assert exchange(csms) == [
        ("rx", 2, "BootNotification"),
        ("tx", 3, None),
        ("tx", 2, "UnlockConnector"),
        ("rx", 3, None),
    ]
    boot, boot_answer, unlock, unlock_answer = csms.frames
    assert boot_answer.frame[1] == boot.frame[1]
    assert unlock_answer.frame[1] == unlock.frame[1]
    assert all(r.charge_point_id == CP_ID for r in csms.frames)
    assert [r.time for r in csms.frames] == sorted(r.time for r in csms.frames)


async def test_callerrors_are_recorded_both_ways(csms: CentralSystem, cp: SmallChargePoint) -> None:
    await cp._send('[2,"bad-1","Heartbeat",{"unexpected":1}]')
    cp.script("ClearCache", callerror("InternalError"))
    with pytest.raises(CallErrorReceived):
        await csms.clear_cache(CP_ID)
    errors = [(r.direction, r.frame[2]) for r in csms.frames if r.frame[0] == 4]
    assert errors == [("tx", "FormationViolation"), ("rx", "InternalError")]


async def test_malformed_text_is_recorded_raw_and_answered(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    await cp._connection.send("this is not json")
    await cp.send(call.Heartbeat())  # answered only after the text before it was read
    garbage, answer = csms.frames[:2]
    assert (garbage.direction, garbage.raw, garbage.frame) == ("rx", "this is not json", [])
    assert (answer.direction, answer.frame[:3]) == ("tx", [4, "-1", "FormationViolation"])
    assert exchange(csms, after=2) == [("rx", 2, "Heartbeat"), ("tx", 3, None)]


async def test_each_frame_is_logged_on_one_line(
    csms: CentralSystem, cp: SmallChargePoint, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cp_pi.csms"):
        await csms.unlock_connector(CP_ID, 1)
    lines = [r.getMessage() for r in caplog.records if r.name == "cp_pi.csms"]
    assert len(lines) == 2
    assert lines[0].startswith(f"{CP_ID} <- csms CALL UnlockConnector ")
    assert lines[0].endswith('{"connectorId":1}')
    assert lines[1].startswith(f"{CP_ID} -> csms CALLRESULT ")
    assert lines[1].endswith('{"status":"Unlocked"}')


async def test_an_observer_sees_each_frame_as_it_is_recorded(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    seen: list[FrameRecord] = []
    csms.on_record = seen.append
    await cp.boot()
    assert seen == list(csms.frames)
    assert len(seen) == 2


def heartbeat(journal: FrameJournal, unique_id: str) -> FrameRecord:
    return journal.record(CP_ID, "rx", f'[2,"{unique_id}","Heartbeat",{{}}]')


def heartbeats(journal: FrameJournal, count: int) -> list[FrameRecord]:
    return [heartbeat(journal, f"hb-{n}") for n in range(count)]


def unique_id(wanted: str) -> Callable[[FrameRecord], bool]:
    return lambda record: record.frame[1] == wanted


async def test_a_limited_journal_keeps_the_newest_frames_at_their_positions() -> None:
    journal = FrameJournal(limit=3)
    recorded = heartbeats(journal, 5)
    frames = journal.frames
    assert list(frames) == recorded[2:]
    assert (len(frames), frames.forgotten) == (5, 2)
    assert [frames[p] for p in (2, 3, 4)] == recorded[2:]
    assert frames[-1] is recorded[4]
    assert frames[3:] == recorded[3:]
    assert frames[:4] == recorded[2:4]
    assert frames.index(recorded[3]) == 3
    with pytest.raises(IndexError, match="forgotten"):
        frames[1]
    with pytest.raises(ValueError, match="not among the kept frames"):
        frames.index(recorded[0])


async def test_a_journal_without_a_limit_forgets_nothing() -> None:
    journal = FrameJournal()
    recorded = heartbeats(journal, 5)
    assert list(journal.frames) == recorded
    assert journal.frames.forgotten == 0


async def test_a_waiter_from_before_frames_were_forgotten_finds_a_later_one() -> None:
    journal = FrameJournal(limit=2)
    heartbeats(journal, 2)
    mark = len(journal.frames)
    waiting = asyncio.create_task(
        journal.wait_for(unique_id("wanted"), after=mark, timeout=5, what="the wanted frame")
    )
    await asyncio.sleep(0)  # one turn of the loop: the waiter looks, finds nothing, sleeps
    assert not waiting.done()
    heartbeats(journal, 3)  # the mark and the frame after it drop out
    wanted = heartbeat(journal, "wanted")
    assert await waiting is wanted
    assert journal.frames.forgotten > mark
    assert journal.frames.index(wanted) == mark + 3


async def test_waiting_after_a_forgotten_position_starts_at_the_oldest_kept() -> None:
    journal = FrameJournal(limit=2)
    recorded = heartbeats(journal, 4)
    found = await journal.wait_for(
        lambda record: record.is_call("Heartbeat"), after=1, timeout=1, what="a Heartbeat"
    )
    assert found is recorded[2]


@contextmanager
def calls_of(function: Callable[..., Any]) -> Iterator[list[FrameType]]:
    """Every call of `function` made in the block, seen through the interpreter's profiler."""
    seen: list[FrameType] = []

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event == "call" and frame.f_code is function.__code__:
            seen.append(frame)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


@pytest.mark.parametrize(
    ("level", "summaries"), [(logging.INFO, 1), (logging.WARNING, 0)], ids=["shown", "hidden"]
)
async def test_a_frame_is_summarised_only_when_the_log_shows_it(
    caplog: pytest.LogCaptureFixture, level: int, summaries: int
) -> None:
    journal = FrameJournal()
    with caplog.at_level(level, logger="cp_pi.csms"), calls_of(FrameRecord.summary) as built:
        recorded = heartbeat(journal, "hb-1")
    assert len(built) == summaries
    assert list(journal.frames) == [recorded]
    lines = [r.getMessage() for r in caplog.records if r.name == "cp_pi.csms"]
    assert lines == [recorded.summary()] * summaries
