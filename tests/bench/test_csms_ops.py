"""The bench's csms op: the page plays the central system and sees the charge point's answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cp_pi.app import Station
from cp_pi.bench.csms_ops import csms_ops
from cp_pi.bench.server import BenchError, ExtraCommand
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID
from tests.csms.helpers import CP_ID as SMALL_CP_ID
from tests.csms.helpers import SmallChargePoint, callerror, connected

from .conftest import BenchStationFactory
from .helpers import BenchClient, bench_client, bench_url, is_call


async def csms(client: BenchClient, action: str, **args: Any) -> dict[str, Any]:
    return await client.command(op="csms", action=action, **args)


async def charging(client: BenchClient) -> int:
    """Plug in and start remotely; the transaction id."""
    await client.command(op="plug", connector=1)
    await client.connector_reaches(status="Preparing")
    await csms(client, "remote_start", connector=1, id_tag="TAG1")
    state = await client.connector_reaches(status="Charging")
    transaction_id: int = state["connectors"][0]["transaction_id"]
    return transaction_id


# -- through the bench, against the station's own charge point --------------------------------


async def test_unlock_answers_with_the_charge_points_answer(client: BenchClient) -> None:
    ack = await csms(client, "unlock", connector=1)
    assert ack == {
        "type": "ack",
        "op": "csms",
        "action": "unlock",
        "connector": 1,
        "answer": {"status": "Unlocked"},
    }


async def test_unlock_of_a_connector_that_does_not_exist_is_not_supported(
    client: BenchClient,
) -> None:
    ack = await csms(client, "unlock", connector=7)
    assert ack["answer"] == {"status": "NotSupported"}


async def test_unlock_while_charging_ends_the_transaction_and_opens_the_lock(
    client: BenchClient,
) -> None:
    await charging(client)
    start = client.mark()
    ack = await csms(client, "unlock", connector=1)
    assert ack["answer"] == {"status": "Unlocked"}
    await client.frame(is_call("StopTransaction", reason="UnlockCommand"), after=start)
    await client.connector_reaches(status="Finishing", locked=False, contactor_closed=False)


async def test_unlock_with_a_stuck_lock_fails_and_reports_the_lock(client: BenchClient) -> None:
    await charging(client)
    await client.command(op="fault", connector=1, fault="lock_stuck")
    ack = await csms(client, "unlock", connector=1)
    assert ack["answer"] == {"status": "UnlockFailed"}
    await client.connector_reaches(status="Faulted", error_code="ConnectorLockFailure")


async def test_remote_start_and_stop(client: BenchClient) -> None:
    await client.command(op="plug", connector=1)
    await client.connector_reaches(status="Preparing")
    ack = await csms(client, "remote_start", connector=1, id_tag="TAG9")
    assert ack == {
        "type": "ack",
        "op": "csms",
        "action": "remote_start",
        "id_tag": "TAG9",
        "connector": 1,
        "answer": {"status": "Accepted"},
    }
    state = await client.connector_reaches(status="Charging", id_tag="TAG9")
    transaction_id = state["connectors"][0]["transaction_id"]
    ack = await csms(client, "remote_stop", transaction_id=transaction_id)
    assert ack["answer"] == {"status": "Accepted"}
    await client.connector_reaches(status="Finishing", transaction_id=None)


async def test_remote_stop_of_an_unknown_transaction_is_rejected(client: BenchClient) -> None:
    ack = await csms(client, "remote_stop", transaction_id=99)
    assert (ack["transaction_id"], ack["answer"]) == (99, {"status": "Rejected"})


async def test_change_availability(client: BenchClient) -> None:
    ack = await csms(client, "change_availability", connector=1, kind="Inoperative")
    assert (ack["connector"], ack["kind"], ack["answer"]) == (
        1,
        "Inoperative",
        {"status": "Accepted"},
    )
    await client.connector_reaches(status="Unavailable", operative=False)
    await csms(client, "change_availability", connector=1, kind="Operative")
    await client.connector_reaches(status="Available", operative=True)


async def test_a_soft_reset_boots_the_charge_point_again(
    central: CentralSystem, client: BenchClient
) -> None:
    start = len(central.frames)
    ack = await csms(client, "reset", kind="Soft")
    assert (ack["kind"], ack["answer"]) == ("Soft", {"status": "Accepted"})
    await central.wait_for_call(CP_ID, "BootNotification", after=start)


async def test_get_diagnostics_uploads_to_the_embedded_csms_files_by_default(
    station: Station, central: CentralSystem, client: BenchClient
) -> None:
    start = len(central.frames)
    ack = await csms(client, "get_diagnostics")
    assert station.csms_files is not None
    assert ack["location"] == f"{station.csms_files.url}/"
    name = ack["answer"]["fileName"]
    await central.wait_for_call(
        CP_ID,
        "DiagnosticsStatusNotification",
        where=lambda p: p["status"] == "Uploaded",
        after=start,
    )
    assert (station.settings.data_dir / "csms-files" / name).stat().st_size > 0


async def test_update_firmware_downloads_from_the_location_given(
    station: Station, central: CentralSystem, client: BenchClient
) -> None:
    assert station.csms_files is not None
    start = len(central.frames)
    ack = await csms(client, "update_firmware", location=f"{station.csms_files.url}/missing.whl")
    assert ack["answer"] == {}
    await central.wait_for_call(
        CP_ID,
        "FirmwareStatusNotification",
        where=lambda p: p["status"] == "DownloadFailed",
        after=start,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"action": "explode"}, "unknown csms action 'explode'", id="unknown"),
        pytest.param({}, "unknown csms action None", id="no-action"),
        pytest.param({"action": "unlock"}, "connector must be an integer", id="no-connector"),
        pytest.param(
            {"action": "unlock", "connector": "1"}, "connector must be an integer", id="string"
        ),
        pytest.param({"action": "remote_start", "connector": 1}, "id_tag must be", id="no-tag"),
        pytest.param({"action": "remote_stop"}, "transaction_id must be", id="no-transaction"),
        pytest.param({"action": "reset", "kind": "Warm"}, "Soft or Hard", id="reset-kind"),
        pytest.param(
            {"action": "change_availability", "connector": 1, "kind": "Off"},
            "Operative or Inoperative",
            id="availability-kind",
        ),
        pytest.param({"action": "update_firmware"}, "location must be", id="no-location"),
        pytest.param(
            {"action": "update_firmware", "location": "file:///etc/passwd"},
            "location must be an http, https or ftp URL",
            id="file-location",
        ),
    ],
)
async def test_a_bad_csms_command_gets_an_error_and_the_connection_stays_open(
    client: BenchClient, args: dict[str, Any], message: str
) -> None:
    reply = await client.command(op="csms", **args)
    assert reply["type"] == "error"
    assert message in reply["message"]
    assert (await csms(client, "unlock", connector=1))["type"] == "ack"


async def test_without_the_embedded_csms_the_csms_op_says_why(
    make_bench_station: BenchStationFactory, csms: CentralSystem
) -> None:
    async with (
        make_bench_station(csms.url) as station,
        bench_client(bench_url(station)) as client,
    ):
        state = await client.first(lambda m: m["type"] == "state")
        reply = await client.command(op="csms", action="unlock", connector=1)
    assert state["csms_commands"] is False
    assert reply["type"] == "error"
    assert "embedded central system" in reply["message"]


# -- the op itself, against a charge point that answers as scripted ---------------------------


@pytest.fixture
async def small_cp(csms: CentralSystem) -> AsyncIterator[SmallChargePoint]:
    async with connected(csms) as charge_point:
        yield charge_point


@pytest.fixture
def op(csms: CentralSystem) -> ExtraCommand:
    return csms_ops(csms, SMALL_CP_ID, timeout=0.5)["csms"]


async def test_a_callerror_answer_carries_its_code(
    small_cp: SmallChargePoint, op: ExtraCommand
) -> None:
    small_cp.script("UnlockConnector", callerror("InternalError"))
    with pytest.raises(BenchError) as refused:
        await op({"op": "csms", "action": "unlock", "connector": 1})
    assert refused.value.details == {
        "action": "unlock",
        "reason": "callerror",
        "code": "InternalError",
    }
    assert str(refused.value).startswith("CALLERROR InternalError")


async def test_no_answer_is_a_timeout(small_cp: SmallChargePoint, op: ExtraCommand) -> None:
    small_cp.script("Reset", None)
    with pytest.raises(BenchError) as refused:
        await op({"op": "csms", "action": "reset", "kind": "Hard"})
    assert refused.value.details == {"action": "reset", "reason": "timeout"}
    assert "did not answer within 0.5 s" in str(refused.value)


async def test_an_answer_outside_the_schema_is_named(
    small_cp: SmallChargePoint, op: ExtraCommand
) -> None:
    small_cp.script("UnlockConnector", lambda unique_id: [3, unique_id, {"status": "Accepted"}])
    with pytest.raises(BenchError) as refused:
        await op({"op": "csms", "action": "unlock", "connector": 1})
    assert refused.value.details == {"action": "unlock", "reason": "invalid_answer"}


async def test_an_absent_charge_point_is_named(csms: CentralSystem, op: ExtraCommand) -> None:
    with pytest.raises(BenchError) as refused:
        await op({"op": "csms", "action": "unlock", "connector": 1})
    assert refused.value.details == {"action": "unlock", "reason": "disconnected"}
    assert SMALL_CP_ID in str(refused.value)


# -- smart charging from the bench ----------------------------------------------------------------


async def test_sample_profile_limits_the_connector_and_shapes_the_schedule(
    client: BenchClient,
) -> None:
    ack = await csms(client, "set_charging_profile", connector=1, profile="sample")
    assert ack["answer"] == {"status": "Accepted"}
    assert ack["profile"]["chargingProfilePurpose"] == "TxDefaultProfile"
    state = await client.state_where(
        lambda s: any(each["limit_a"] is not None for each in s.get("charging_limits", []))
    )
    (limit,) = state["charging_limits"]
    assert limit["source"] == "TxDefaultProfile"
    assert limit["limit_a"] in (8.0, 16.0, 32.0)
    ack = await csms(client, "get_composite_schedule", connector=1, duration=86400)
    schedule = ack["answer"]["chargingSchedule"]
    sample = schedule["chargingSchedulePeriod"]
    assert sample[0]["startPeriod"] == 0
    assert {p["limit"] for p in sample} <= {8.0, 16.0, 32.0}
    assert len(sample) >= 3  # the evening peak and the night within any 24 hours

    cleared = await csms(client, "clear_charging_profile")
    assert cleared["answer"] == {"status": "Accepted"}
    await client.state_where(lambda s: s["charging_limits"][0]["limit_a"] is None)


async def test_smart_charging_commands_check_their_arguments(client: BenchClient) -> None:
    reply = await csms(client, "get_composite_schedule", connector=1, unit="kW")
    assert reply["type"] == "error"
    assert "unit must be A or W" in reply["message"]
    reply = await csms(client, "clear_charging_profile", purpose="Cheap")
    assert reply["type"] == "error"
    assert "purpose must be" in reply["message"]
