"""The frame record: every frame, both directions, in order, malformed ones included."""

from __future__ import annotations

import logging

import pytest
from ocpp.v16 import call

from cp_pi.csms.records import FrameRecord
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
    assert seen == csms.frames
    assert len(seen) == 2
