"""What an operator reads in the journal: transactions by name, deliveries after an outage,
failed connections in plain words, and the opt-in OCPP frame log."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cp_pi.app import Station, running_station
from cp_pi.config import LogConfig, load_settings
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from cp_pi.ocpp16.link import explain
from cp_pi.ocpp16.wire import redact
from cp_pi.station.clock import Clock
from tests.conftest import CP_ID, StationFactory, fast_settings, rig_of
from tests.ocpp16.helpers import LogWatch, until
from tests.ocpp16.test_link import csms_outage

NEW_KEY = "fedcba9876543210fedcba98"
TEN_YEARS = 10 * 365 * 24 * 3600.0


async def test_an_offline_transaction_is_named_by_its_ref_then_its_id_and_its_delivery_told(
    station: Station, rig: BenchRig, csms: CentralSystem, log_watch: LogWatch
) -> None:
    await csms.change_configuration(CP_ID, "AllowOfflineTxForUnknownId", "true")
    await csms_outage(station, csms)
    rig.plug(1)
    station.charger.swipe(1, "OFFLINE")
    await until(station, lambda: station.connectors[1].transaction is not None)
    tx = station.connectors[1].transaction
    assert tx is not None
    ref = tx.ref[:8]
    station.charger.swipe(1, "OFFLINE")
    await until(station, lambda: station.connectors[1].transaction is None)
    queued = station.charger.outbox.pending_transaction_messages

    await csms.start()
    await log_watch.seen("delivered")
    transaction_id = max(csms.transactions)
    lines = log_watch.lines
    assert f"connector 1: transaction ref {ref} started for OFFLINE" in lines
    assert any(
        line.startswith(f"connector 1: transaction ref {ref} ended (Local, ") for line in lines
    )
    assert f"transaction ref {ref} is transaction {transaction_id}" in lines
    (delivered,) = [line for line in lines if line.startswith("delivered")]
    assert re.fullmatch(
        rf"delivered {queued} queued transaction messages; the oldest had waited \d+ s", delivered
    )


async def test_the_oldest_wait_is_told_on_the_clock_the_messages_were_stamped_with(
    tmp_path: Path, csms: CentralSystem, log_watch: LogWatch
) -> None:
    # The charge point's clock is ten years off the system's: its messages carry its time, and
    # how long the oldest waited is measured on that same clock, not on the system's.
    clock = Clock(wall=lambda: time.time() - TEN_YEARS, synchronised=lambda: True)
    settings = fast_settings(tmp_path / "data", csms.url)
    async with running_station(settings, response_timeout=5, clock=clock) as station:
        await until(station, lambda: station.charger.csms_connected)
        rig = rig_of(station)
        await csms.change_configuration(CP_ID, "AllowOfflineTxForUnknownId", "true")
        await csms_outage(station, csms)
        rig.plug(1)
        station.charger.swipe(1, "OFFLINE")
        await until(station, lambda: station.connectors[1].transaction is not None)
        station.charger.swipe(1, "OFFLINE")
        await until(station, lambda: station.connectors[1].transaction is None)
        await csms.start()
        await log_watch.seen("delivered")
    (delivered,) = [line for line in log_watch.lines if line.startswith("delivered")]
    assert re.fullmatch(
        r"delivered 2 queued transaction messages; the oldest had waited \d+ s", delivered
    )


async def test_a_link_that_comes_back_with_nothing_queued_says_nothing_of_deliveries(
    station: Station, csms: CentralSystem, log_watch: LogWatch
) -> None:
    await csms_outage(station, csms)
    before = sum(line == "link: connected" for line in log_watch.lines)
    await csms.start()
    await log_watch.seen("link: connected", times=before + 1)
    assert not [line for line in log_watch.lines if line.startswith("delivered")]


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    """A plain HTTP server: it answers a TLS hello with "400 Bad Request" in clear text."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_wss_url_to_a_plain_server_is_named_as_such(
    tmp_path: Path, csms: CentralSystem, http_server: int, log_watch: LogWatch
) -> None:
    for port, line in [
        (http_server, f"TLS: 127.0.0.1:{http_server} speaks plain ws://, not wss://"),
        (csms.port, f"TLS: 127.0.0.1:{csms.port} hung up during the handshake (does it speak"),
    ]:
        settings = fast_settings(tmp_path / str(port), f"wss://127.0.0.1:{port}")
        async with running_station(settings):
            await log_watch.seen(line)
    said = [line for line in log_watch.lines if line.startswith("link: cannot connect: TLS")]
    assert all(re.search(r"; next attempt at \d\d:\d\d:\d\d \(in ", line) for line in said)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "host name csms.example not found (check csms_url, DNS and the network)",
        ),
        (TimeoutError(), "timed out: no answer from csms.example:443"),
        (
            OSError(errno.ENETUNREACH, "Network is unreachable"),
            "csms.example:443 cannot be reached: Network is unreachable (is the network up?)",
        ),
    ],
    ids=["name not found", "timeout", "no network"],
)
def test_failures_that_need_a_broken_network_are_said_plainly(error: OSError, said: str) -> None:
    assert explain(error, "wss://csms.example/ocpp/cp-1").startswith(said)


def frame_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cp_pi.frames"]


async def test_the_frame_log_shows_every_frame_whole_once_with_the_key_hidden(
    make_station: StationFactory, csms: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_station(log=LogConfig(ocpp_frames=True)):
        answer = await csms.change_configuration(CP_ID, "AuthorizationKey", NEW_KEY)
        assert answer == {"status": "Accepted"}
    exchanged = [
        ("sent " if record.direction == "rx" else "received ") + json.dumps(redact(record.frame))
        for record in csms.frames
        if record.charge_point_id == CP_ID
    ]
    # The same frames, each once; only their interleaving may differ between the two ends.
    assert sorted(frame_lines(caplog)) == sorted(exchanged)
    assert NEW_KEY not in caplog.text
    change = next(line for line in exchanged if "ChangeConfiguration" in line)
    assert '{"key": "AuthorizationKey", "value": "***"}' in change


async def test_without_the_frame_log_no_frame_is_logged(
    make_station: StationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_station():
        pass
    assert frame_lines(caplog) == []


def test_the_frame_log_is_switched_on_by_its_environment_variable() -> None:
    settings = load_settings(environ={"CP_PI_LOG__OCPP_FRAMES": "1"}, default_path=Path("/-"))
    assert settings.log.ocpp_frames
