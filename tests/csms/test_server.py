"""The central system as a server: handshake, commands, waiting, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from cp_pi.csms.records import FrameRecord
from cp_pi.csms.server import CentralSystem, run_csms
from cp_pi.listening import CannotListen
from tests.conftest import CP_ID as STATION_ID
from tests.conftest import booted, fast_settings

from .helpers import CP_ID, OCPP16, SmallChargePoint, connected

Command = Callable[[CentralSystem], Awaitable[dict[str, Any]]]

ROUND_TRIPS: list[tuple[Command, str, dict[str, Any], dict[str, Any]]] = [
    (
        lambda c: c.unlock_connector(CP_ID, 1),
        "UnlockConnector",
        {"connectorId": 1},
        {"status": "Unlocked"},
    ),
    (
        lambda c: c.remote_start(CP_ID, "TAG", connector_id=1),
        "RemoteStartTransaction",
        {"idTag": "TAG", "connectorId": 1},
        {"status": "Accepted"},
    ),
    (
        lambda c: c.remote_start(CP_ID, "TAG"),
        "RemoteStartTransaction",
        {"idTag": "TAG"},
        {"status": "Accepted"},
    ),
    (
        lambda c: c.remote_stop(CP_ID, 7),
        "RemoteStopTransaction",
        {"transactionId": 7},
        {"status": "Accepted"},
    ),
    (lambda c: c.reset(CP_ID), "Reset", {"type": "Soft"}, {"status": "Accepted"}),
    (lambda c: c.reset(CP_ID, "Hard"), "Reset", {"type": "Hard"}, {"status": "Accepted"}),
    (
        lambda c: c.change_availability(CP_ID, 0, "Inoperative"),
        "ChangeAvailability",
        {"connectorId": 0, "type": "Inoperative"},
        {"status": "Accepted"},
    ),
    (
        lambda c: c.change_configuration(CP_ID, "MeterValueSampleInterval", "10"),
        "ChangeConfiguration",
        {"key": "MeterValueSampleInterval", "value": "10"},
        {"status": "Accepted"},
    ),
    (
        lambda c: c.get_configuration(CP_ID, ["MeterValueSampleInterval"]),
        "GetConfiguration",
        {"key": ["MeterValueSampleInterval"]},
        {
            "configurationKey": [
                {"key": "MeterValueSampleInterval", "readonly": False, "value": "300"}
            ]
        },
    ),
    (
        lambda c: c.get_configuration(CP_ID),
        "GetConfiguration",
        {},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
    ),
    (lambda c: c.clear_cache(CP_ID), "ClearCache", {}, {"status": "Accepted"}),
    (
        lambda c: c.trigger_message(CP_ID, "StatusNotification", connector_id=1),
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        {"status": "Accepted"},
    ),
    (
        lambda c: c.data_transfer(CP_ID, "com.example", "ping", "hello"),
        "DataTransfer",
        {"vendorId": "com.example", "messageId": "ping", "data": "hello"},
        {"status": "Accepted", "data": "pong"},
    ),
]


@pytest.mark.parametrize(
    ("command", "action", "request_payload", "answer"),
    ROUND_TRIPS,
    ids=[f"{action}-{i}" for i, (_, action, _, _) in enumerate(ROUND_TRIPS)],
)
async def test_command_reaches_the_charge_point_and_returns_its_answer(
    csms: CentralSystem,
    cp: SmallChargePoint,
    command: Command,
    action: str,
    request_payload: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    assert await command(csms) == answer
    [request] = cp.requests
    assert request[2:] == [action, request_payload]


async def test_commands_may_overlap(csms: CentralSystem, cp: SmallChargePoint) -> None:
    cp.script("UnlockConnector", None)
    unlock = asyncio.create_task(csms.unlock_connector(CP_ID, 1, timeout=5))
    await csms.journal.wait_for(
        lambda r: r.direction == "tx", after=0, timeout=5, what="the UnlockConnector CALL"
    )
    assert await csms.clear_cache(CP_ID) == {"status": "Accepted"}
    assert not unlock.done()
    unlock_id = cp.requests[0][1]
    await cp._send(f'[3,"{unlock_id}",{{"status":"Unlocked"}}]')
    assert await unlock == {"status": "Unlocked"}


async def test_send_raw_returns_the_answering_frame(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    answer = await csms.send_raw(
        CP_ID, '[2,"raw-1","UnlockConnector",{"connectorId":"1"}]', unique_id="raw-1"
    )
    assert answer is not None
    assert answer[:3] == [4, "raw-1", "TypeConstraintViolation"]
    answer = await csms.send_raw(
        CP_ID, '[2,"raw-2","UnlockConnector",{"connectorId":1}]', unique_id="raw-2"
    )
    assert answer == [3, "raw-2", {"status": "Unlocked"}]


async def test_send_raw_returns_none_when_nothing_answers(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    broken = '[2,"raw-3","UnlockConnector",{"connectorId":'
    assert await csms.send_raw(CP_ID, broken, unique_id="raw-3", timeout=0.2) is None
    assert csms.frames[-1].raw == broken
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}


async def test_wait_for_call_finds_a_recorded_call_and_a_future_one(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    await cp.boot()
    boot = await csms.wait_for_call(CP_ID, "BootNotification", timeout=0.01)
    assert boot is csms.frames[0]

    mark = len(csms.frames)
    waiting = asyncio.create_task(
        csms.wait_for_call(
            CP_ID, "StatusNotification", where=lambda p: p["connectorId"] == 2, after=mark
        )
    )
    for connector_id in (1, 2):
        await cp.send(
            call.StatusNotification(
                connector_id=connector_id, status="Available", error_code="NoError"
            )
        )
    record = await waiting
    assert record.frame[3]["connectorId"] == 2
    assert csms.frames.index(record) > mark


async def test_wait_for_call_looks_only_after_the_mark(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    await cp.boot()
    with pytest.raises(TimeoutError, match="BootNotification from cp-1"):
        await csms.wait_for_call(CP_ID, "BootNotification", after=len(csms.frames), timeout=0.1)


async def test_wait_for_call_ignores_other_charge_points(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    async with connected(csms, "cp-2") as other:
        await other.boot()
    with pytest.raises(TimeoutError):
        await csms.wait_for_call(CP_ID, "BootNotification", timeout=0.1)


async def test_handshake_without_ocpp16_is_refused(csms: CentralSystem) -> None:
    for offered in (None, ["ocpp2.0.1"]):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{csms.url}/{CP_ID}", subprotocols=offered):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 400
        assert b"subprotocol" in refused.value.response.body


async def test_a_url_without_charge_point_id_is_refused(csms: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{csms.url}/", subprotocols=OCPP16):
            pass
    assert refused.value.response.status_code == 404


async def test_the_url_reports_the_port_picked() -> None:
    async with CentralSystem(port=0) as csms:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", csms.url)
        assert not csms.url.endswith(":0")
        async with connected(csms) as cp:
            await cp.boot()


async def test_a_reconnecting_charge_point_replaces_its_connection(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    async with connected(csms) as newer:
        await cp._connection.wait_closed()
        assert cp._connection.close_code == 1000
        assert cp._connection.close_reason == "replaced by a new connection"
        assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}
        assert newer.requests
        assert not cp.requests


async def test_commands_to_an_absent_charge_point_fail_clearly(csms: CentralSystem) -> None:
    with pytest.raises(ConnectionError, match="cp-9"):
        await csms.unlock_connector("cp-9", 1)


async def test_wait_for_charge_point(csms: CentralSystem) -> None:
    with pytest.raises(TimeoutError, match=CP_ID):
        await csms.wait_for_charge_point(CP_ID, timeout=0.1)
    async with connected(csms):  # connected() itself waits for the registration
        await csms.wait_for_charge_point(CP_ID, timeout=0.01)


async def test_stop_closes_connections_cleanly_and_twice_is_fine(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    await csms.stop()
    await cp._connection.wait_closed()
    assert cp._connection.close_code == 1001  # going away, answered by the charge point
    await csms.stop()
    with pytest.raises(ConnectionError):
        await csms.unlock_connector(CP_ID, 1)


async def test_a_restarted_central_system_listens_on_the_same_url(csms: CentralSystem) -> None:
    url = csms.url
    await csms.stop()
    await csms.start()
    assert csms.url == url
    async with connected(csms) as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_a_limited_central_system_keeps_the_newest_frames_of_a_busy_charge_point(
    tmp_path: Path,
) -> None:
    limit = 10
    async with CentralSystem(port=0, journal_limit=limit) as csms:
        settings = fast_settings(tmp_path, csms.url)
        async with booted(settings, csms, wait_for_boot=True, response_timeout=5):
            beats: list[FrameRecord] = []
            for _ in range(limit):
                mark = len(csms.frames)
                assert await csms.trigger_message(STATION_ID, "Heartbeat") == {"status": "Accepted"}
                beats.append(await csms.wait_for_call(STATION_ID, "Heartbeat", after=mark))
                assert csms.frames.index(beats[-1]) >= mark
            kept = list(csms.frames)
            assert len(kept) == limit
            assert len(csms.frames) >= 4 * limit  # TriggerMessage, answer, Heartbeat, answer
            assert csms.frames.forgotten == len(csms.frames) - limit
            assert beats[-1] in kept
            assert beats[0] not in kept


class _ListeningUrl(logging.Handler):
    """Resolves a future with the URL the central system logs when it starts listening."""

    def __init__(self) -> None:
        super().__init__()
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"ws://[^/\s]+", record.getMessage())
        if found and "listening" in record.getMessage() and not self.url.done():
            self.url.set_result(found.group())


async def test_run_csms_serves_until_cancelled() -> None:
    listening = _ListeningUrl()
    logger = logging.getLogger("cp_pi.csms")
    logger.addHandler(listening)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        running = asyncio.create_task(run_csms("127.0.0.1", 0, {"GOOD"}))
        url = await asyncio.wait_for(listening.url, timeout=5)
        async with connect(f"{url}/{CP_ID}", subprotocols=OCPP16) as websocket:
            cp = SmallChargePoint(CP_ID, websocket)
            receiving = asyncio.create_task(cp.start())
            bad = await cp.send(call.Authorize(id_tag="BAD"))
            assert bad.id_tag_info["status"] == "Invalid"
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            with pytest.raises(ConnectionClosedOK):
                await receiving
    finally:
        logger.removeHandler(listening)
        logger.setLevel(old_level)


async def test_run_csms_reports_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen, match=f"127.0.0.1:{port}: the port is in use"):
            await run_csms("127.0.0.1", port, None)
