"""The bench control protocol, spoken over a real websocket to a booted station on mock pins."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus

from cp_pi.app import Station
from cp_pi.config import BenchConfig, ConnectorConfig, LockConfig
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID

from .conftest import BenchStationFactory
from .helpers import BenchClient, bench_client, bench_url, connector, is_call


async def http_get(url: str) -> tuple[int, Headers, str]:
    def get() -> tuple[int, Headers, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, Headers(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, Headers(error.headers), error.read().decode()

    return await asyncio.to_thread(get)


async def plugged_in(client: BenchClient) -> None:
    assert await client.command(op="plug", connector=1) == {"type": "ack", "op": "plug"}
    # The vehicle's side settles as well: the pilot's B and the PP's rating are debounced.
    await client.connector_reaches(
        cable=True, status="Preparing", pilot_state="B", cable_rating_a=32
    )


# -- state -----------------------------------------------------------------------------------


async def test_the_state_arrives_first_on_connect(url: str) -> None:
    async with bench_client(url) as client:
        state = await client.first(lambda m: True)
    assert state["type"] == "state"
    assert state["charge_point_id"] == CP_ID
    assert state["link"] == "connected"
    assert state["csms_commands"] is True
    assert connector(state) | {"meter_wh": 0, "meter": None} == {
        "id": 1,
        "cable": False,
        "has_lock": True,
        "locked": False,
        "latch_engaged": False,
        "contactor_closed": False,
        "status": "Available",
        "error_code": "NoError",
        "transaction_id": None,
        "id_tag": None,
        "meter_wh": 0,
        "connector_status": "GOOD_CONNECTION",
        "lock_drives": 0,
        "operative": True,
        "reservation": None,
        "fault": "none",
        "rcd": "ok",  # mock pins give the residual-current monitor by default
        "meter": None,
        "pilot_state": "A",  # no vehicle
        "pilot_duty": None,  # no wave: steady +12 V
        "current_offered_a": 0.0,
        "cable_rating_a": None,  # no plug
        "limit_source": "config",  # max_current, 32 A
        "vehicle": "A",
    }


async def test_the_state_op_answers_the_state(client: BenchClient) -> None:
    start = client.mark()
    await client.connection.send(json.dumps({"op": "state"}))
    reply = await client.first(lambda m: True, after=start)
    assert reply["type"] == "state"
    assert connector(reply)["status"] == "Available"


async def test_api_state_equals_the_websocket_state(url: str, client: BenchClient) -> None:
    await plugged_in(client)
    status, headers, body = await http_get(f"{url}/api/state")
    start = client.mark()
    await client.connection.send(json.dumps({"op": "state"}))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == await client.first(lambda m: m["type"] == "state", after=start)


# -- commands --------------------------------------------------------------------------------


async def test_plug_and_unplug_are_acked_and_shown(client: BenchClient) -> None:
    await plugged_in(client)
    assert await client.command(op="unplug", connector=1) == {"type": "ack", "op": "unplug"}
    await client.connector_reaches(cable=False, status="Available")


async def test_a_swiped_tag_starts_charging_and_stops_it_again(client: BenchClient) -> None:
    await plugged_in(client)
    ack = await client.command(op="swipe", connector=1, id_tag="TAG1")
    assert ack == {"type": "ack", "op": "swipe"}
    state = await client.connector_reaches(status="Charging", transaction_id=1)
    assert connector(state)["id_tag"] == "TAG1"
    assert connector(state)["locked"]
    assert connector(state)["contactor_closed"]
    await client.command(op="swipe", connector=1, id_tag="TAG1")
    await client.connector_reaches(status="Finishing", transaction_id=None, locked=False)


async def test_an_injected_fault_shows_and_clears(client: BenchClient) -> None:
    ack = await client.command(op="fault", connector=1, fault="feedback_broken")
    assert ack == {"type": "ack", "op": "fault"}
    await client.connector_reaches(fault="feedback_broken")
    await client.command(op="fault", connector=1, fault="none")
    await client.connector_reaches(fault="none")


async def test_the_vehicle_is_played_by_plug_ev_and_fault(client: BenchClient) -> None:
    ack = await client.command(op="plug", connector=1, cable_rating=20)
    assert ack == {"type": "ack", "op": "plug"}
    await client.connector_reaches(vehicle="B", pilot_state="B", cable_rating_a=20)
    assert await client.command(op="ev", connector=1, state="E") == {"type": "ack", "op": "ev"}
    await client.connector_reaches(vehicle="E", pilot_state="E", status="Faulted")
    await client.command(op="ev", connector=1, state="B")
    await client.connector_reaches(pilot_state="B", status="Preparing")
    await client.command(op="fault", connector=1, fault="diode_missing")
    await client.connector_reaches(fault="diode_missing")
    await client.command(op="plug", connector=1, cable_rating="bad")
    await client.connector_reaches(status="Faulted", error_code="OtherError")
    await client.command(op="unplug", connector=1)
    await client.connector_reaches(vehicle="A", status="Available", cable_rating_a=None)


async def test_a_ref_comes_back_with_the_answer(client: BenchClient) -> None:
    ack = await client.command(op="plug", connector=1, ref="plug-7")
    error = await client.command(op="plug", connector=9, ref={"n": 8})
    assert ack == {"type": "ack", "op": "plug", "ref": "plug-7"}
    assert error["ref"] == {"n": 8}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not valid JSON", id="bad-json"),
        pytest.param("[1, 2]", "a command is a JSON object", id="not-an-object"),
        pytest.param('{"op": "dance"}', "unknown op 'dance'", id="unknown-op"),
        pytest.param('{"op": "plug", "connector": 2}', "no connector 2", id="unknown-connector"),
        pytest.param('{"op": "plug", "connector": "1"}', "no connector '1'", id="string-connector"),
        pytest.param('{"op": "unplug", "connector": true}', "no connector True", id="bool"),
        pytest.param('{"op": "plug"}', "no connector None", id="no-connector"),
        pytest.param(
            '{"op": "fault", "connector": 1, "fault": "fire"}', "unknown fault 'fire'", id="fault"
        ),
        pytest.param(
            '{"op": "swipe", "connector": 1, "id_tag": ""}', "id_tag must be", id="empty-tag"
        ),
        pytest.param(
            '{"op": "ev", "connector": 1, "state": "F"}', "unknown vehicle state 'F'", id="ev-f"
        ),
        pytest.param(
            '{"op": "plug", "connector": 1, "cable_rating": 16}',
            "unknown cable_rating 16",
            id="cable-rating",
        ),
        pytest.param(
            '{"op": "swipe", "connector": 1, "id_tag": "' + "X" * 21 + '"}',
            "id_tag must be",
            id="long-tag",
        ),
    ],
)
async def test_a_bad_command_gets_an_error_and_the_connection_stays_open(
    client: BenchClient, text: str, message: str
) -> None:
    reply = await client.send_text(text)
    assert reply["type"] == "error"
    assert message in reply["message"]
    assert await client.command(op="plug", connector=1) == {"type": "ack", "op": "plug"}


async def test_a_bad_command_changes_nothing(client: BenchClient) -> None:
    await client.command(op="fault", connector=1, fault="fire")
    await client.command(op="swipe", connector=1, id_tag="")
    start = client.mark()
    await client.connection.send(json.dumps({"op": "state"}))
    state = await client.first(lambda m: m["type"] == "state", after=start)
    assert connector(state)["fault"] == "none"
    assert connector(state)["id_tag"] is None


async def test_a_slow_csms_command_does_not_hold_up_the_others(
    make_bench_station: BenchStationFactory,
) -> None:
    # A stuck lock retried at these timings takes about half a second to give up.
    slow_lock = LockConfig(drive_time=0.25, pause=0.1, settle_time=0.02, retries=1)
    async with (
        make_bench_station(connectors=[ConnectorConfig(lock=slow_lock)]) as station,
        bench_client(bench_url(station)) as client,
    ):
        await plugged_in(client)
        await client.command(op="swipe", connector=1, id_tag="TAG1")
        await client.connector_reaches(status="Charging", locked=True)
        await client.command(op="fault", connector=1, fault="lock_stuck")
        start = client.mark()
        await client.connection.send(json.dumps({"op": "csms", "action": "unlock", "connector": 1}))
        await client.connection.send(json.dumps({"op": "unplug", "connector": 1}))
        unplugged = await client.first(lambda m: m.get("op") == "unplug", after=start)
        unlocked = await client.first(lambda m: m.get("op") == "csms", after=start, timeout=10)
        assert unlocked["answer"] == {"status": "UnlockFailed"}
        assert client.messages.index(unplugged) < client.messages.index(unlocked)


# -- OCPP frames -----------------------------------------------------------------------------


async def test_a_late_client_sees_the_frames_so_far(client: BenchClient) -> None:
    boot = await client.frame(is_call("BootNotification"))
    assert boot["dir"] == "tx"
    assert isinstance(boot["time"], float)


async def test_every_frame_arrives_with_its_direction(client: BenchClient) -> None:
    start = client.mark()
    await plugged_in(client)
    preparing = await client.frame(is_call("StatusNotification", status="Preparing"), after=start)
    answer = await client.frame(lambda f: f[:2] == [3, preparing["frame"][1]], after=start)
    assert (preparing["dir"], answer["dir"]) == ("tx", "rx")
    assert answer["frame"][2] == {}


async def test_a_callerror_the_charge_point_sends_is_shown(
    central: CentralSystem, client: BenchClient
) -> None:
    start = client.mark()
    frame = [2, "bad-1", "UnlockConnector", {"connectorId": "1"}]
    await central.send_raw(CP_ID, json.dumps(frame), unique_id="bad-1")
    error = await client.frame(lambda f: f[0] == 4, after=start)
    assert error["dir"] == "tx"
    assert error["frame"][1:3] == ["bad-1", "TypeConstraintViolation"]


# -- HTTP ------------------------------------------------------------------------------------


async def test_the_page_and_its_files_are_served(url: str) -> None:
    status, headers, page = await http_get(f"{url}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for name, kind in [("bench.js", "text/javascript"), ("bench.css", "text/css")]:
        assert f'"{name}"' in page
        status, headers, _ = await http_get(f"{url}/{name}")
        assert (status, headers["Content-Type"]) == (200, f"{kind}; charset=utf-8")


@pytest.mark.parametrize(
    "path", ["/nothing", "/static/bench.js", "/..%2Fserver.py", "/../server.py", "/index"]
)
async def test_anything_else_is_not_found(url: str, path: str) -> None:
    status, _, body = await http_get(url + path)
    assert (status, body) == (404, "not found\n")


async def test_a_websocket_from_a_foreign_page_is_refused(url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with bench_client(url, origin="http://elsewhere.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_websocket_from_the_page_itself_is_let_in(url: str) -> None:
    async with bench_client(url, origin=url) as client:
        assert (await client.first(lambda m: True))["type"] == "state"


async def raw_request(url: str, path: str, **headers: str) -> tuple[int, str]:
    """One HTTP/1.1 request with exactly these headers, as a browser or an attacker sends it;
    returns the status code and the body."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [
            f"GET {path} HTTP/1.1",
            *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status = int(head.split()[1])
        length = re.search(r"(?im)^content-length: *(\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        return status, body.decode()
    finally:
        writer.close()


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec_WebSocket_Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec_WebSocket_Version": "13",
}


async def test_a_websocket_from_a_rebound_name_is_refused(url: str, caplog: Any) -> None:
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}

    assert await raw_request(url, "/bench", **evil, **UPGRADE) == (421, "wrong host\n")
    assert "Host 'evil.example'" in caplog.text
    port = urlsplit(url).port
    evil_with_port = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    assert (await raw_request(url, "/bench", **evil_with_port, **UPGRADE))[0] == 421


@pytest.mark.parametrize("path", ["/api/state", "/", "/bench.js"])
async def test_http_answers_only_to_the_benchs_own_names(url: str, path: str) -> None:
    port = urlsplit(url).port
    assert (await raw_request(url, path, Host="evil.example"))[0] == 421
    assert (await raw_request(url, path))[0] == 421  # no Host at all
    for name in ("127.0.0.1", "localhost", "[::1]", "LocalHost"):
        assert (await raw_request(url, path, Host=f"{name}:{port}"))[0] == 200, name


async def test_loopback_names_open_the_websocket(url: str) -> None:
    port = urlsplit(url).port
    for name in ("localhost", "[::1]"):
        host = f"{name}:{port}"
        status, _ = await raw_request(url, "/bench", Host=host, Origin=f"http://{host}", **UPGRADE)
        assert status == 101, name


async def test_a_page_of_another_origin_on_an_allowed_name_is_refused(url: str) -> None:
    port = urlsplit(url).port
    host = f"127.0.0.1:{port}"
    for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}", "null"):
        status, body = await raw_request(url, "/bench", Host=host, Origin=origin, **UPGRADE)
        assert (status, body) == (403, "foreign origin\n"), origin


async def test_a_configured_host_name_is_answered(make_bench_station: BenchStationFactory) -> None:
    bench = BenchConfig(port=0, allowed_hosts=["Bench.Example.lan"])
    async with make_bench_station(bench=bench) as station:
        assert station.bench is not None
        url = station.bench.url
        host = f"bench.example.lan:{station.bench.port}"
        assert (await raw_request(url, "/api/state", Host=host))[0] == 200
        status, _ = await raw_request(url, "/bench", Host=host, Origin=f"http://{host}", **UPGRADE)
        assert status == 101
        assert (await raw_request(url, "/api/state", Host="other.example.lan"))[0] == 421


async def test_the_state_follows_the_link(station: Station, client: BenchClient) -> None:
    assert station.csms is not None
    await station.csms.stop()
    state = await client.state_where(lambda s: not s["csms_connected"])
    assert state["link"] != "connected"
    start = client.mark()
    await station.csms.start()
    await client.state_where(lambda s: s["link"] == "connected", after=start)
