"""OCTT 1.6 charge point cases of the Core and Remote Trigger profiles, each named after its case.

Every test follows its case's scenario against the real charge point over a websocket and checks
what the compliance tool validates. Cases covered by tests elsewhere keep their tests there;
docs/octt-coverage.md maps every case to its test.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from cp_pi.app import Station
from cp_pi.csms.records import FrameRecord
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID, StationFactory
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import TAG, start_charging

#: Core keys the tool requires in GetConfiguration, each with the accessibility it accepts.
REQUIRED_CORE_KEYS = {
    "AuthorizeRemoteTxRequests": {True, False},
    "ClockAlignedDataInterval": {False},
    "ConnectionTimeOut": {False},
    "ConnectorPhaseRotation": {False},
    "GetConfigurationMaxKeys": {True},
    "HeartbeatInterval": {False},
    "LocalAuthorizeOffline": {False},
    "LocalPreAuthorize": {False},
    "MeterValuesAlignedData": {False},
    "MeterValuesSampledData": {False},
    "MeterValueSampleInterval": {False},
    "NumberOfConnectors": {True},
    "ResetRetries": {False},
    "StopTransactionOnEVSideDisconnect": {False},
    "StopTransactionOnInvalidId": {False},
    "StopTxnAlignedData": {False},
    "StopTxnSampledData": {False},
    "SupportedFeatureProfiles": {True},
    "TransactionMessageAttempts": {False},
    "TransactionMessageRetryInterval": {False},
    "UnlockConnectorOnEVSideDisconnect": {False},
}


async def configure(csms: CentralSystem, **values: str) -> None:
    for key, value in values.items():
        assert await csms.change_configuration(CP_ID, key, value) == {"status": "Accepted"}


async def answered(csms: CentralSystem, call: FrameRecord) -> None:
    """Wait until the central system has answered the charge point's CALL."""
    unique_id = call.frame[1]
    await csms.journal.wait_for(
        lambda r: r.direction == "tx" and r.frame[:2] == [3, unique_id],
        after=csms.frames.index(call),
        timeout=10,
        what=f"answer to {call.frame[2]}",
    )


def timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- booting ----------------------------------------------------------------------------------


async def test_tc_001_a_rejected_boot_is_sent_again_after_the_interval(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    csms.boot_status = "Rejected"
    csms.heartbeat_interval = 1
    start = mark(csms)
    async with make_station(wait_for_boot=False):
        rejected = await csms.wait_for_call(CP_ID, "BootNotification", after=start)
        csms.boot_status = "Accepted"
        accepted = await csms.wait_for_call(
            CP_ID, "BootNotification", after=csms.frames.index(rejected) + 1
        )
        assert accepted.time - rejected.time >= csms.heartbeat_interval - 0.05
        between = csms.frames[csms.frames.index(rejected) : csms.frames.index(accepted)]
        assert [r.frame[2] for r in between if r.direction == "rx" and r.frame[0] == 2] == [
            "BootNotification"
        ]
        after = csms.frames.index(accepted)
        await status_reached(csms, "Available", after=after, connector=0)
        await status_reached(csms, "Available", after=after, connector=1)
        beat = await csms.wait_for_call(CP_ID, "Heartbeat", after=after)
        assert beat.time - accepted.time >= csms.heartbeat_interval - 0.05


async def test_tc_002_configuration_is_read_and_set_while_the_boot_is_pending(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    csms.boot_status = "Pending"
    csms.heartbeat_interval = 1
    start = mark(csms)
    async with make_station(wait_for_boot=False):
        pending = await csms.wait_for_call(CP_ID, "BootNotification", after=start)
        answer = await csms.get_configuration(CP_ID, ["MeterValueSampleInterval"])
        assert [entry["key"] for entry in answer["configurationKey"]] == [
            "MeterValueSampleInterval"
        ]
        await configure(csms, MeterValueSampleInterval="30")
        csms.boot_status = "Accepted"
        accepted = await csms.wait_for_call(
            CP_ID, "BootNotification", after=csms.frames.index(pending) + 1
        )
        after = csms.frames.index(accepted)
        await status_reached(csms, "Available", after=after, connector=0)
        await status_reached(csms, "Available", after=after, connector=1)
        answer = await csms.get_configuration(CP_ID, ["MeterValueSampleInterval"])
        assert answer["configurationKey"][0]["value"] == "30"


# -- charging sessions ------------------------------------------------------------------------


async def test_tc_003_plug_in_first_then_present_a_tag(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    start = mark(csms)
    rig.plug(1)
    preparing = await status_reached(csms, "Preparing", after=start)
    station.charger.swipe(1, TAG)
    authorize = await call_index(csms, "Authorize", after=start, idTag=TAG)
    started = await call_index(csms, "StartTransaction", after=start, idTag=TAG, connectorId=1)
    await status_reached(csms, "Charging", after=start)
    assert preparing < authorize < started


async def test_tc_004_1_present_a_tag_first_then_plug_in(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    start = mark(csms)
    station.charger.swipe(1, TAG)
    await call_index(csms, "Authorize", after=start, idTag=TAG)
    await status_reached(csms, "Preparing", after=start)
    assert calls(csms, "StartTransaction", after=start) == []
    rig.plug(1)
    await call_index(csms, "StartTransaction", after=start, idTag=TAG)
    await status_reached(csms, "Charging", after=start)


async def test_tc_004_2_a_tag_without_a_cable_expires_after_the_connection_timeout(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, ConnectionTimeOut="1")
    start = mark(csms)
    station.charger.swipe(1, TAG)
    preparing = await status_reached(csms, "Preparing", after=start)
    available = await status_reached(csms, "Available", after=preparing)
    assert csms.frames[available].time - csms.frames[preparing].time >= 0.9
    assert calls(csms, "StartTransaction", after=start) == []
    assert station.connectors[1].awaiting_tag is None


async def test_tc_005_2_ev_side_disconnect_stops_and_the_central_system_unlocks(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(
        csms, StopTransactionOnEVSideDisconnect="true", UnlockConnectorOnEVSideDisconnect="false"
    )
    await start_charging(station, csms)
    start = mark(csms)
    rig.unplug(1)
    await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
    # The cable stays locked at the charger's side, and the connector is not Available with it.
    await status_reached(csms, "Finishing", after=start)
    assert rig.lock_engaged(1)  # released only when the central system says so
    assert (await csms.unlock_connector(CP_ID, 1)) == {"status": "Unlocked"}
    assert not rig.lock_engaged(1)
    await status_reached(csms, "Available", after=start)


async def test_tc_007_a_cached_tag_starts_without_asking_the_central_system(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(
        csms, AuthorizationCacheEnabled="true", LocalPreAuthorize="true", ConnectionTimeOut="1"
    )
    start = mark(csms)
    station.charger.swipe(1, TAG)  # online: the answer goes into the cache
    await call_index(csms, "Authorize", after=start, idTag=TAG)
    preparing = await status_reached(csms, "Preparing", after=start)
    await status_reached(csms, "Available", after=preparing)  # no cable came

    start = mark(csms)
    station.charger.swipe(1, TAG)
    await status_reached(csms, "Preparing", after=start)
    rig.plug(1)
    await call_index(csms, "StartTransaction", after=start, idTag=TAG)
    await status_reached(csms, "Charging", after=start)
    assert calls(csms, "Authorize", after=start) == []


async def test_tc_010_remote_start_with_the_cable_plugged_in_first(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, AuthorizeRemoteTxRequests="true")
    answer = await csms.get_configuration(CP_ID, ["AuthorizeRemoteTxRequests"])
    assert answer["configurationKey"][0]["value"] == "true"
    start = mark(csms)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)
    assert (await csms.remote_start(CP_ID, TAG, connector_id=1)) == {"status": "Accepted"}
    authorize = await call_index(csms, "Authorize", after=start, idTag=TAG)
    started = await call_index(csms, "StartTransaction", after=start, idTag=TAG, connectorId=1)
    await status_reached(csms, "Charging", after=start)
    assert authorize < started


async def test_tc_011_2_a_remote_start_without_a_cable_times_out(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, ConnectionTimeOut="1")
    start = mark(csms)
    assert (await csms.remote_start(CP_ID, TAG, connector_id=1)) == {"status": "Accepted"}
    preparing = await status_reached(csms, "Preparing", after=start)
    await status_reached(csms, "Available", after=preparing)
    assert calls(csms, "StartTransaction", after=start) == []


@pytest.mark.parametrize(
    "refusal",
    ["Invalid", "Expired", "Blocked"],
    ids=["tc_023_1_invalid", "tc_023_2_expired", "tc_023_3_blocked"],
)
async def test_tc_023_a_tag_the_central_system_refuses_is_not_charged(
    station: Station, rig: BenchRig, csms: CentralSystem, refusal: str
) -> None:
    await configure(csms, LocalPreAuthorize="true")
    csms.tag_statuses["REFUSED"] = refusal
    start = mark(csms)
    station.charger.swipe(1, "REFUSED")
    authorize = await csms.wait_for_call(CP_ID, "Authorize", after=start)
    await answered(csms, authorize)
    rig.plug(1)
    await status_reached(csms, "Preparing", after=start)
    connector = station.connectors[1]
    assert connector.transaction is None
    assert connector.awaiting_tag is None
    assert not connector.busy.locked()  # no start under way either
    assert calls(csms, "StartTransaction", after=start) == []


async def test_tc_027_remote_start_on_connector_0_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    assert (await csms.remote_start(CP_ID, TAG, connector_id=0)) == {"status": "Rejected"}
    # Whatever the refused request started would be sent before the triggered Heartbeat.
    assert (await csms.trigger_message(CP_ID, "Heartbeat")) == {"status": "Accepted"}
    await call_index(csms, "Heartbeat", after=start)
    assert station.connectors[1].awaiting_tag is None
    assert calls(csms, "StatusNotification", after=start) == []


async def test_tc_028_remote_stop_of_an_unknown_transaction_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    assert (await csms.remote_stop(CP_ID, transaction_id + 1000)) == {"status": "Rejected"}
    assert station.connectors[1].hardware.contactor_closed
    assert calls(csms, "StopTransaction", after=start) == []


async def test_tc_068_only_the_tag_that_started_stops_the_transaction(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    start = mark(csms)
    rig.plug(1)
    station.charger.swipe(1, TAG)
    await status_reached(csms, "Charging", after=start)
    station.charger.swipe(1, "ANOTHER-TAG")
    assert station.connectors[1].hardware.contactor_closed
    station.charger.swipe(1, TAG)
    stop = await csms.wait_for_call(CP_ID, "StopTransaction", after=start)
    assert stop.frame[3]["idTag"] == TAG
    await status_reached(csms, "Finishing", after=start)
    assert len(calls(csms, "StopTransaction", after=start)) == 1


# -- resets -----------------------------------------------------------------------------------


async def test_tc_013_hard_reset_keeps_a_connector_unavailable(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    assert (await csms.change_availability(CP_ID, 1, "Inoperative")) == {"status": "Accepted"}
    await status_reached(csms, "Unavailable", after=start)
    assert (await csms.reset(CP_ID, "Hard")) == {"status": "Accepted"}
    boot = await call_index(csms, "BootNotification", after=start)
    await status_reached(csms, "Unavailable", after=boot)
    await status_reached(csms, "Available", after=boot, connector=0)
    assert (await csms.change_availability(CP_ID, 1, "Operative")) == {"status": "Accepted"}
    await status_reached(csms, "Available", after=boot)


async def test_tc_014_soft_reset_without_a_transaction_boots_again(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    assert (await csms.reset(CP_ID, "Soft")) == {"status": "Accepted"}
    boot = await call_index(csms, "BootNotification", after=start)
    await status_reached(csms, "Available", after=boot, connector=0)
    await status_reached(csms, "Available", after=boot, connector=1)
    assert calls(csms, "StopTransaction", after=start) == []


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("Hard", "HardReset"), ("Soft", "SoftReset")],
    ids=["tc_015_hard", "tc_016_soft"],
)
async def test_tc_015_tc_016_reset_during_a_transaction_stops_it_and_boots_again(
    station: Station, csms: CentralSystem, kind: str, reason: str
) -> None:
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    assert (await csms.reset(CP_ID, kind)) == {"status": "Accepted"}  # type: ignore[arg-type]
    await call_index(
        csms, "StopTransaction", after=start, reason=reason, transactionId=transaction_id
    )
    finishing = await status_reached(csms, "Finishing", after=start)
    boot = await call_index(csms, "BootNotification", after=start)
    assert finishing < boot
    after_boot = await csms.wait_for_call(
        CP_ID, "StatusNotification", where=lambda p: p["connectorId"] == 1, after=boot
    )
    assert after_boot.frame[3]["status"] in ("Finishing", "Preparing")
    await status_reached(csms, "Available", after=boot, connector=0)


async def test_tc_034_an_unavailable_charge_point_stays_unavailable_after_a_power_cut(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station():
        start = mark(csms)
        answer = await csms.change_availability(CP_ID, 0, "Inoperative")
        assert answer == {"status": "Accepted"}
        await status_reached(csms, "Unavailable", after=start, connector=0)
        await status_reached(csms, "Unavailable", after=start, connector=1)
    start = mark(csms)  # the process is gone: power back on
    async with make_station(wait_for_boot=False):
        boot = await call_index(csms, "BootNotification", after=start)
        await status_reached(csms, "Unavailable", after=boot, connector=0)
        await status_reached(csms, "Unavailable", after=boot, connector=1)
        statuses = calls(csms, "StatusNotification", after=boot)
        assert all(status["status"] == "Unavailable" for status in statuses)


# -- configuration ----------------------------------------------------------------------------


async def test_tc_019_every_required_core_key_with_its_accessibility(
    station: Station, csms: CentralSystem
) -> None:
    profiles = await csms.get_configuration(CP_ID, ["SupportedFeatureProfiles"])
    assert not profiles.get("unknownKey")
    [entry] = profiles["configurationKey"]
    assert entry["key"] == "SupportedFeatureProfiles"
    assert "Core" in entry["value"].split(",")

    everything = await csms.get_configuration(CP_ID)
    readonly = {entry["key"]: entry["readonly"] for entry in everything["configurationKey"]}
    for key, accepted in REQUIRED_CORE_KEYS.items():
        assert key in readonly, f"{key} missing"
        assert readonly[key] in accepted, f"{key}: readonly={readonly[key]}"

    one = await csms.get_configuration(CP_ID, ["HeartbeatInterval"])  # TC_019_2 of older editions
    assert [entry["key"] for entry in one["configurationKey"]] == ["HeartbeatInterval"]


async def test_tc_040_1_an_unknown_key_is_not_supported(
    station: Station, csms: CentralSystem
) -> None:
    assert (await csms.change_configuration(CP_ID, "Testing", "true")) == {"status": "NotSupported"}


async def test_tc_040_2_an_invalid_value_is_rejected_and_not_kept(
    station: Station, csms: CentralSystem
) -> None:
    before = await csms.get_configuration(CP_ID, ["MeterValueSampleInterval"])
    answer = await csms.change_configuration(CP_ID, "MeterValueSampleInterval", "-1")
    assert answer == {"status": "Rejected"}
    assert await csms.get_configuration(CP_ID, ["MeterValueSampleInterval"]) == before


# -- authorization cache ----------------------------------------------------------------------


async def test_tc_061_after_clear_cache_a_tag_is_asked_for_again(
    station: Station, csms: CentralSystem
) -> None:
    await configure(
        csms, AuthorizationCacheEnabled="true", LocalPreAuthorize="true", ConnectionTimeOut="1"
    )
    start = mark(csms)
    station.charger.swipe(1, TAG)  # Authorized: the answer is cached
    await call_index(csms, "Authorize", after=start, idTag=TAG)
    preparing = await status_reached(csms, "Preparing", after=start)
    await status_reached(csms, "Available", after=preparing)  # the connection timeout
    assert (await csms.clear_cache(CP_ID)) == {"status": "Accepted"}
    start = mark(csms)
    station.charger.swipe(1, TAG)
    await call_index(csms, "Authorize", after=start, idTag=TAG)


# -- meter values -----------------------------------------------------------------------------


async def test_tc_070_sampled_meter_values_at_the_configured_interval(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, MeterValueSampleInterval="1", ClockAlignedDataInterval="0")
    answer = await csms.get_configuration(CP_ID, ["MeterValuesSampledData"])
    measurands = [m for m in answer["configurationKey"][0]["value"].split(",") if m]
    expected = set(measurands or ["Energy.Active.Import.Register"])
    start = mark(csms)
    transaction_id = await start_charging(station, csms)
    first = await csms.wait_for_call(CP_ID, "MeterValues", after=start)
    second = await csms.wait_for_call(CP_ID, "MeterValues", after=csms.frames.index(first) + 1)
    times = []
    for record in (first, second):
        payload = record.frame[3]
        assert payload["transactionId"] == transaction_id
        [value] = payload["meterValue"]
        times.append(timestamp(value["timestamp"]))
        sampled = value["sampledValue"]
        assert {s.get("measurand", "Energy.Active.Import.Register") for s in sampled} == expected
        for sample in sampled:
            assert sample.get("context", "Sample.Periodic") == "Sample.Periodic"
            assert sample.get("format", "Raw") == "Raw"
            assert sample.get("location") != "EV"
    assert 0.9 <= (times[1] - times[0]).total_seconds() < 2


# -- remote trigger ---------------------------------------------------------------------------


async def test_tc_055_a_trigger_for_an_unknown_connector_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    answer = await csms.trigger_message(CP_ID, "MeterValues", connector_id=2)
    assert answer == {"status": "Rejected"}
    # The next message the charge point sends comes after anything the refused trigger caused.
    assert (await csms.trigger_message(CP_ID, "Heartbeat")) == {"status": "Accepted"}
    await call_index(csms, "Heartbeat", after=start)
    assert calls(csms, "MeterValues", after=start) == []
