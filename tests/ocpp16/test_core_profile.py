"""The rest of the Core profile, as a charge point, against a real CSMS on loopback."""

from __future__ import annotations

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import TAG, start_charging


async def test_remote_start_locks_then_starts_then_closes_the_contactor(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_010_CS (Remote start, cable plugged in first)."""
    transaction_id = await start_charging(station, csms)
    connector = station.connectors[1]
    assert connector.hardware.contactor_closed
    assert rig.lock_engaged(1)
    assert csms.transactions[transaction_id].id_tag == TAG
    assert connector.transaction is not None
    assert connector.transaction.transaction_id == transaction_id


async def test_remote_start_on_a_busy_connector_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    """OCTT TC_026_CS (Remote start on a connector with a transaction: Rejected)."""
    await start_charging(station, csms)
    assert (await csms.remote_start(CP_ID, "OTHER", connector_id=1))["status"] == "Rejected"
    assert (await csms.remote_start(CP_ID, "OTHER", connector_id=7))["status"] == "Rejected"


async def test_remote_start_before_the_cable_waits_in_preparing(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_011_1_CS (Remote start first, then the cable)."""
    start = mark(csms)
    assert (await csms.remote_start(CP_ID, TAG, connector_id=1))["status"] == "Accepted"
    await status_reached(csms, "Preparing", after=start)
    rig.plug(1)
    await status_reached(csms, "Charging", after=start)


async def test_remote_stop_ends_with_reason_remote_and_releases_the_cable(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_012_CS (Remote stop)."""
    transaction_id = await start_charging(station, csms)
    start = mark(csms)
    assert (await csms.remote_stop(CP_ID, transaction_id))["status"] == "Accepted"
    await call_index(csms, "StopTransaction", after=start, reason="Remote")
    await status_reached(csms, "Finishing", after=start)
    assert not station.connectors[1].hardware.contactor_closed
    assert not rig.lock_engaged(1)
    assert (await csms.remote_stop(CP_ID, transaction_id))["status"] == "Rejected"


async def test_local_swipe_starts_and_the_same_tag_stops(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_003_CS and TC_068_CS (only the starting tag stops)."""
    start = mark(csms)
    rig.plug(1)
    station.charger.swipe(1, "RFID-1")
    await call_index(csms, "Authorize", after=start, idTag="RFID-1")
    await status_reached(csms, "Charging", after=start)
    station.charger.swipe(1, "RFID-2")  # another tag does not own it
    station.charger.swipe(1, "RFID-1")
    await call_index(csms, "StopTransaction", after=start, reason="Local", idTag="RFID-1")


async def test_unknown_tag_is_not_charged(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    csms.authorized_tags = {"GOOD"}
    start = mark(csms)
    rig.plug(1)
    station.charger.swipe(1, "BAD")
    await call_index(csms, "Authorize", after=start, idTag="BAD")
    station.charger.swipe(1, "GOOD")
    await status_reached(csms, "Charging", after=start)
    assert [p["idTag"] for p in calls(csms, "StartTransaction", after=start)] == ["GOOD"]


async def test_ev_unplug_stops_with_ev_disconnected_and_ends_available(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_005_1_CS (EV side disconnected, stop and unlock)."""
    await start_charging(station, csms)
    start = mark(csms)
    rig.unplug(1)
    await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
    await status_reached(csms, "Available", after=start)
    assert not rig.lock_engaged(1)  # UnlockConnectorOnEVSideDisconnect


async def test_meter_values_are_sampled_during_a_transaction(
    station: Station, csms: CentralSystem
) -> None:
    assert (await csms.change_configuration(CP_ID, "MeterValueSampleInterval", "1")) == {
        "status": "Accepted"
    }
    transaction_id = await start_charging(station, csms)
    record = await csms.wait_for_call(CP_ID, "MeterValues")
    payload = record.frame[3]
    assert payload["transactionId"] == transaction_id
    sampled = payload["meterValue"][0]["sampledValue"][0]
    assert sampled["measurand"] == "Energy.Active.Import.Register"
    assert sampled["unit"] == "Wh"


async def test_soft_reset_ends_the_transaction_then_boots_again(
    station: Station, csms: CentralSystem
) -> None:
    """OCTT TC_016_CS (Soft reset with a transaction)."""
    await start_charging(station, csms)
    start = mark(csms)
    assert (await csms.reset(CP_ID, "Soft"))["status"] == "Accepted"
    stop = await call_index(csms, "StopTransaction", after=start, reason="SoftReset")
    boot = await call_index(csms, "BootNotification", after=start)
    assert stop < boot


async def test_hard_reset_ends_with_reason_hard_reset(
    station: Station, csms: CentralSystem
) -> None:
    """OCTT TC_015_CS (Hard reset with a transaction)."""
    await start_charging(station, csms)
    start = mark(csms)
    assert (await csms.reset(CP_ID, "Hard"))["status"] == "Accepted"
    await call_index(csms, "StopTransaction", after=start, reason="HardReset")
    await call_index(csms, "BootNotification", after=start)


async def test_change_availability_is_scheduled_during_a_transaction_and_persists(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station() as station:
        transaction_id = await start_charging(station, csms)
        answer = await csms.change_availability(CP_ID, 1, "Inoperative")
        assert answer == {"status": "Scheduled"}
        start = mark(csms)
        await csms.remote_stop(CP_ID, transaction_id)
        rig = rig_of(station)
        rig.unplug(1)
        await status_reached(csms, "Unavailable", after=start)
        assert (await csms.remote_start(CP_ID, TAG, connector_id=1))["status"] == "Rejected"
    start = mark(csms)
    async with make_station():
        await status_reached(csms, "Unavailable", after=start)
        assert (await csms.change_availability(CP_ID, 1, "Operative")) == {"status": "Accepted"}
        await status_reached(csms, "Available", after=start)


async def test_whole_charge_point_inoperative(station: Station, csms: CentralSystem) -> None:
    start = mark(csms)
    assert (await csms.change_availability(CP_ID, 0, "Inoperative")) == {"status": "Accepted"}
    await status_reached(csms, "Unavailable", after=start, connector=0)
    await status_reached(csms, "Unavailable", after=start, connector=1)
    assert (await csms.change_availability(CP_ID, 5, "Inoperative")) == {"status": "Rejected"}


async def test_configuration_changes_persist_across_restart(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    """OCTT TC_021_CS, TC_040_1_CS and TC_040_2_CS, across a restart."""
    async with make_station():
        answer = await csms.change_configuration(CP_ID, "MeterValueSampleInterval", "15")
        assert answer == {"status": "Accepted"}
        assert (await csms.change_configuration(CP_ID, "NoSuchKey", "1")) == {
            "status": "NotSupported"
        }
        assert (await csms.change_configuration(CP_ID, "NumberOfConnectors", "4")) == {
            "status": "Rejected"
        }
        assert (await csms.change_configuration(CP_ID, "HeartbeatInterval", "soon")) == {
            "status": "Rejected"
        }
    async with make_station():
        answer = await csms.get_configuration(CP_ID, ["MeterValueSampleInterval", "Nope"])
        assert answer["configurationKey"] == [
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "15"}
        ]
        assert answer["unknownKey"] == ["Nope"]


async def test_get_configuration_lists_every_core_key(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.get_configuration(CP_ID)
    keys = {entry["key"] for entry in answer["configurationKey"]}
    assert {
        "HeartbeatInterval",
        "MeterValueSampleInterval",
        "NumberOfConnectors",
        "UnlockConnectorOnEVSideDisconnect",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "StopTransactionOnEVSideDisconnect",
    } <= keys


async def test_clear_cache_and_data_transfer(station: Station, csms: CentralSystem) -> None:
    """OCTT TC_061_CS (ClearCache answer) and TC_062_CS (DataTransfer)."""
    assert (await csms.clear_cache(CP_ID)) == {"status": "Accepted"}
    assert (await csms.data_transfer(CP_ID, "com.example"))["status"] == "UnknownVendorId"


async def test_trigger_message_answers_then_sends(station: Station, csms: CentralSystem) -> None:
    """OCTT TC_054_CS (TriggerMessage)."""
    start = mark(csms)
    assert (await csms.trigger_message(CP_ID, "StatusNotification", connector_id=1)) == {
        "status": "Accepted"
    }
    await status_reached(csms, "Available", after=start)
    assert (await csms.trigger_message(CP_ID, "Heartbeat")) == {"status": "Accepted"}
    await call_index(csms, "Heartbeat", after=start)
    assert (await csms.trigger_message(CP_ID, "MeterValues", connector_id=1)) == {
        "status": "Accepted"
    }
    await call_index(csms, "MeterValues", after=start)
    assert (await csms.trigger_message(CP_ID, "BootNotification")) == {"status": "Accepted"}
    await call_index(csms, "BootNotification", after=start)
    for message in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        assert (await csms.trigger_message(CP_ID, message)) == {"status": "Accepted"}
        await call_index(csms, message, after=start, status="Idle")
