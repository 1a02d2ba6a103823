"""`cp-pi status` names the reservation that holds a connector."""

from __future__ import annotations

from datetime import datetime

from cp_pi.status_socket import render


def test_a_reserved_connector_shows_its_reservation_and_when_it_ends() -> None:
    connector = {
        "id": 1,
        "has_lock": True,
        "locked": False,
        "contactor_closed": False,
        "status": "Reserved",
        "error_code": "NoError",
        "connector_status": "GOOD_CONNECTION",
        "transaction_ref": None,
        "reservation": {"id": 9, "id_tag": "HOLDER", "expires": "2030-01-01T12:00:00Z"},
    }
    document = {
        "version": "0",
        "charge_point_id": "cp",
        "status": "Available",
        "link": {"connected_since": None, "csms_url": "ws://x/cp", "state": "connecting",
                 "last_error": None},
        "connectors": [connector],
        "queued_transaction_messages": 0,
    }  # fmt: skip

    lines = render(document).splitlines()

    local = datetime.fromisoformat("2030-01-01T12:00:00+00:00").astimezone()
    assert (
        lines[2]
        == "connector 1: Reserved (NoError), GOOD_CONNECTION, lock released, contactor open"
    )
    assert lines[3] == f"  reservation 9 for HOLDER until {local:%Y-%m-%d %H:%M:%S}"
