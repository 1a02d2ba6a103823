"""The bench's csms op for the Local Auth List Management and Reservation profiles: the page
sends SendLocalList, GetLocalListVersion, ReserveNow and CancelReservation through the embedded
central system and shows the charge point's answers and state."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import BenchClient


async def csms(client: BenchClient, action: str, **args: Any) -> dict[str, Any]:
    return await client.command(op="csms", action=action, **args)


async def test_a_local_list_is_sent_and_its_version_read_back(client: BenchClient) -> None:
    entries = [{"id_tag": "TAG1", "status": "Accepted"}, {"id_tag": "TAG2", "status": "Blocked"}]
    ack = await csms(client, "send_local_list", list_version=4, entries=entries)
    assert (ack["list_version"], ack["update_type"], ack["answer"]) == (
        4,
        "Full",
        {"status": "Accepted"},
    )
    await client.state_where(lambda s: s["local_list_version"] == 4)

    removal = [{"id_tag": "TAG2"}]
    ack = await csms(
        client, "send_local_list", list_version=3, update_type="Differential", entries=removal
    )
    assert ack["answer"] == {"status": "VersionMismatch"}
    ack = await csms(client, "get_local_list_version")
    assert ack["answer"] == {"listVersion": 4}


async def test_a_reservation_is_shown_on_its_connector_until_cancelled(
    client: BenchClient,
) -> None:
    ack = await csms(
        client, "reserve_now", connector=1, reservation_id=7, id_tag="TAG1", expires_in=600
    )
    assert ack["answer"] == {"status": "Accepted"}
    state = await client.connector_reaches(status="Reserved")
    reservation = state["connectors"][0]["reservation"]
    assert (reservation["id"], reservation["id_tag"]) == (7, "TAG1")
    assert reservation["expires"] == ack["expiry_date"]

    assert (await csms(client, "cancel_reservation", reservation_id=7))["answer"] == {
        "status": "Accepted"
    }
    await client.connector_reaches(status="Available", reservation=None)
    assert (await csms(client, "cancel_reservation", reservation_id=7))["answer"] == {
        "status": "Rejected"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"action": "send_local_list"}, "list_version must be", id="no-version"),
        pytest.param(
            {"action": "send_local_list", "list_version": 1, "update_type": "Some"},
            "Full or Differential",
            id="update-type",
        ),
        pytest.param(
            {"action": "send_local_list", "list_version": 1, "entries": [{"status": "Accepted"}]},
            "id_tag string",
            id="entry-without-tag",
        ),
        pytest.param(
            {"action": "reserve_now", "connector": 1, "reservation_id": 1},
            "idTag is a string",
            id="reserve-without-tag",
        ),
        pytest.param({"action": "cancel_reservation"}, "reservation_id must be", id="cancel"),
    ],
)
async def test_a_bad_command_gets_an_error(
    client: BenchClient, args: dict[str, Any], message: str
) -> None:
    reply = await client.command(op="csms", **args)
    assert reply["type"] == "error"
    assert message in reply["message"]
