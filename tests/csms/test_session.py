"""What the central system answers a charge point, and how a charge point's answers come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import TypeConstraintViolationError
from ocpp.v16 import call

from cp_pi.csms.server import CallErrorReceived, CentralSystem, InvalidAnswer

from .helpers import CP_ID, SmallChargePoint, callerror, callresult, connected


def assert_recent_utc(timestamp: str) -> None:
    assert timestamp.endswith("Z")
    moment = datetime.fromisoformat(timestamp)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


async def start(
    cp: SmallChargePoint,
    id_tag: str,
    connector_id: int = 1,
    meter: int = 0,
    timestamp: str = "2025-01-01T10:00:00Z",
) -> int:
    result = await cp.send(
        call.StartTransaction(
            connector_id=connector_id, id_tag=id_tag, meter_start=meter, timestamp=timestamp
        )
    )
    transaction_id: int = result.transaction_id
    return transaction_id


async def test_boot_is_accepted_with_the_configured_heartbeat_interval(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    csms.heartbeat_interval = 42
    answer = await cp.boot()
    assert answer.status == "Accepted"
    assert answer.interval == 42
    assert_recent_utc(answer.current_time)


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
async def test_boot_status_follows_the_setting(
    csms: CentralSystem, cp: SmallChargePoint, status: str
) -> None:
    csms.boot_status = status  # type: ignore[assignment]
    assert (await cp.boot()).status == status
    csms.boot_status = "Accepted"
    assert (await cp.boot()).status == "Accepted"


async def test_heartbeat_answers_the_current_utc_time(cp: SmallChargePoint) -> None:
    answer = await cp.send(call.Heartbeat())
    assert_recent_utc(answer.current_time)


async def test_every_tag_is_accepted_without_a_tag_list(cp: SmallChargePoint) -> None:
    answer = await cp.send(call.Authorize(id_tag="ANY-TAG"))
    assert answer.id_tag_info["status"] == "Accepted"


async def test_only_listed_tags_are_accepted(csms: CentralSystem, cp: SmallChargePoint) -> None:
    csms.authorized_tags = {"GOOD"}
    good = await cp.send(call.Authorize(id_tag="GOOD"))
    bad = await cp.send(call.Authorize(id_tag="BAD"))
    assert good.id_tag_info["status"] == "Accepted"
    assert bad.id_tag_info["status"] == "Invalid"


async def test_transactions_are_numbered_from_one_and_recorded(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    first = await start(cp, "TAG-A", connector_id=1, meter=100)
    second = await start(cp, "TAG-B", connector_id=2, meter=500)
    assert (first, second) == (1, 2)

    await cp.send(
        call.StopTransaction(
            transaction_id=first,
            meter_stop=1234,
            timestamp="2025-01-01T11:00:00Z",
            reason="UnlockCommand",
        )
    )

    stopped, running = csms.transactions[1], csms.transactions[2]
    assert (stopped.charge_point_id, stopped.connector_id, stopped.id_tag) == (CP_ID, 1, "TAG-A")
    assert (stopped.meter_start, stopped.meter_stop) == (100, 1234)
    assert stopped.reason == "UnlockCommand"
    assert (stopped.started_at, stopped.stopped_at) == (
        "2025-01-01T10:00:00Z",
        "2025-01-01T11:00:00Z",
    )
    assert (running.id_tag, running.meter_stop, running.reason) == ("TAG-B", None, None)


async def test_a_resent_start_transaction_gets_the_same_id(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    first = await start(cp, "TAG", meter=100)
    # The answer was lost with the link; the charge point sends the same request again.
    async with connected(csms) as reconnected:
        assert await start(reconnected, "TAG", meter=100) == first
    assert list(csms.transactions) == [first]


@pytest.mark.parametrize(
    "change",
    [
        {"connector_id": 2},
        {"id_tag": "OTHER"},
        {"meter": 101},
        {"timestamp": "2025-01-01T10:00:01Z"},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_a_start_differing_in_any_field_is_a_new_transaction(
    csms: CentralSystem, cp: SmallChargePoint, change: dict[str, Any]
) -> None:
    same: dict[str, Any] = {"id_tag": "TAG", "connector_id": 1, "meter": 100}
    first = await start(cp, **same)
    assert await start(cp, **(same | change)) == first + 1
    assert len(csms.transactions) == 2


async def test_the_same_start_from_another_charge_point_is_a_new_transaction(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    first = await start(cp, "TAG")
    async with connected(csms, "cp-2") as other:
        assert await start(other, "TAG") == first + 1


async def test_a_transaction_with_an_unknown_tag_gets_an_id_and_invalid(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    csms.authorized_tags = ["GOOD"]
    result = await cp.send(
        call.StartTransaction(
            connector_id=1, id_tag="BAD", meter_start=0, timestamp="2025-01-01T10:00:00Z"
        )
    )
    assert result.transaction_id == 1
    assert result.id_tag_info["status"] == "Invalid"


async def test_stop_with_a_tag_answers_its_authorization(cp: SmallChargePoint) -> None:
    transaction_id = await start(cp, "TAG")
    answer = await cp.send(
        call.StopTransaction(
            transaction_id=transaction_id,
            meter_stop=10,
            timestamp="2025-01-01T11:00:00Z",
            id_tag="TAG",
        )
    )
    assert answer.id_tag_info["status"] == "Accepted"


async def test_the_latest_status_of_each_connector_is_remembered(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    for connector_id, status, error_code in [
        (0, "Available", "NoError"),
        (1, "Preparing", "NoError"),
        (1, "Faulted", "ConnectorLockFailure"),
    ]:
        await cp.send(
            call.StatusNotification(connector_id=connector_id, status=status, error_code=error_code)
        )
    assert csms.statuses == {
        (CP_ID, 0): ("Available", "NoError"),
        (CP_ID, 1): ("Faulted", "ConnectorLockFailure"),
    }


async def test_meter_values_are_recorded_as_sent(csms: CentralSystem, cp: SmallChargePoint) -> None:
    sample = {
        "timestamp": "2025-01-01T10:30:00Z",
        "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register"}],
    }
    transaction_id = await start(cp, "TAG")
    await cp.send(
        call.MeterValues(connector_id=1, transaction_id=transaction_id, meter_value=[sample])
    )
    [record] = csms.meter_values
    assert (record.charge_point_id, record.connector_id) == (CP_ID, 1)
    assert record.transaction_id == transaction_id
    assert record.meter_value == [sample]


async def test_a_limited_central_system_keeps_the_newest_meter_values() -> None:
    async with CentralSystem(port=0, journal_limit=2) as csms, connected(csms) as cp:
        for wh in (100, 200, 300):
            sample = {"timestamp": "2025-01-01T10:30:00Z", "sampledValue": [{"value": str(wh)}]}
            await cp.send(call.MeterValues(connector_id=1, meter_value=[sample]))
        readings = [r.meter_value[0]["sampledValue"][0]["value"] for r in csms.meter_values]
    assert readings == ["200", "300"]


async def test_data_transfer_knows_no_vendor(cp: SmallChargePoint) -> None:
    answer = await cp.send(call.DataTransfer(vendor_id="com.example", data="hello"))
    assert answer.status == "UnknownVendorId"


async def test_diagnostics_and_firmware_status_are_accepted(cp: SmallChargePoint) -> None:
    await cp.send(call.DiagnosticsStatusNotification(status="Uploaded"))
    await cp.send(call.FirmwareStatusNotification(status="Installed"))


async def test_a_callerror_answer_raises_with_its_code(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    cp.script("Reset", callerror("NotSupported"))
    with pytest.raises(CallErrorReceived) as raised:
        await csms.reset(CP_ID, "Hard")
    assert raised.value.code == "NotSupported"
    assert raised.value.action == "Reset"
    assert "NotSupported" in str(raised.value)


async def test_an_answer_outside_the_schema_is_refused(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    cp.script("UnlockConnector", callresult({"status": "Accepted"}))
    with pytest.raises(InvalidAnswer, match="Accepted"):
        await csms.unlock_connector(CP_ID, 1)


async def test_no_answer_raises_timeout_and_the_session_lives_on(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    cp.script("ClearCache", None)
    with pytest.raises(TimeoutError, match="ClearCache"):
        await csms.clear_cache(CP_ID, timeout=0.2)
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}


async def test_a_request_outside_the_schema_is_not_sent(
    csms: CentralSystem, cp: SmallChargePoint
) -> None:
    with pytest.raises(TypeConstraintViolationError):
        await csms.unlock_connector(CP_ID, "1")  # type: ignore[arg-type]
    assert [r for r in csms.frames if r.direction == "tx"] == []
