"""The link to the central system: outages, reconnects, and what is delivered after them."""

from __future__ import annotations

from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_unlock_connector import start_charging


async def csms_outage(station: Station, csms: CentralSystem) -> None:
    await csms.stop()
    await until(station, lambda: not station.charger.csms_connected)


async def test_a_stop_decided_while_the_csms_is_down_arrives_first_after_it_returns(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    await csms_outage(station, csms)
    rig.unplug(1)
    await until(station, lambda: station.connectors[1].transaction is None)
    assert station.charger.outbox.pending_transaction_messages == 1

    start = mark(csms)
    await csms.start()
    stop = await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
    available = await status_reached(csms, "Available", after=start)
    assert stop < available  # queued transaction messages first, then fresh statuses
    assert csms.frames[stop].frame[3]["transactionId"] == transaction_id
    assert calls(csms, "BootNotification", after=start) == []  # a reconnect is not a boot
    assert station.charger.outbox.pending_transaction_messages == 0


async def test_an_offline_transaction_gets_its_real_id_when_the_csms_answers(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    """OCTT TC_039_CS (Offline transaction, started and stopped offline)."""
    start = mark(csms)
    rig.plug(1)
    station.charger.swipe(1, "CACHED")  # online: the answer fills the authorization cache
    await status_reached(csms, "Charging", after=start)
    station.charger.swipe(1, "CACHED")
    await status_reached(csms, "Finishing", after=start)

    await csms_outage(station, csms)
    station.charger.swipe(1, "CACHED")  # offline: LocalAuthorizeOffline + the cache
    await until(station, lambda: station.connectors[1].transaction is not None)
    station.charger.swipe(1, "CACHED")
    await until(station, lambda: station.connectors[1].transaction is None)
    assert station.charger.outbox.pending_transaction_messages == 2

    start = mark(csms)
    await csms.start()
    started = await call_index(csms, "StartTransaction", after=start)
    stopped = await call_index(csms, "StopTransaction", after=start)
    assert started < stopped
    new_id = max(csms.transactions)
    assert csms.frames[stopped].frame[3]["transactionId"] == new_id
    assert csms.transactions[new_id].reason == "Local"


async def test_an_unknown_tag_offline_is_refused_unless_allowed(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station() as station:
        rig = rig_of(station)
        rig.plug(1)
        await csms.change_configuration(CP_ID, "AllowOfflineTxForUnknownId", "true")
        await csms_outage(station, csms)
        station.charger.swipe(1, "STRANGER")
        await until(station, lambda: station.connectors[1].transaction is not None)


async def test_a_refused_transaction_message_is_retried_then_delivered(
    station: Station, csms: CentralSystem
) -> None:
    await csms.change_configuration(CP_ID, "TransactionMessageRetryInterval", "0")
    transaction_id = await start_charging(station, csms)
    csms.refuse_next("StopTransaction", count=2)
    start = mark(csms)
    await csms.remote_stop(CP_ID, transaction_id)
    await status_reached(csms, "Finishing", after=start)
    attempts = calls(csms, "StopTransaction", after=start)
    assert len(attempts) == 3
    assert attempts[0] == attempts[2]
    assert csms.transactions[transaction_id].reason == "Remote"


async def test_a_message_refused_every_time_is_given_up_after_the_configured_attempts(
    station: Station, csms: CentralSystem
) -> None:
    await csms.change_configuration(CP_ID, "TransactionMessageRetryInterval", "0")
    await csms.change_configuration(CP_ID, "TransactionMessageAttempts", "2")
    transaction_id = await start_charging(station, csms)
    csms.refuse_next("StopTransaction", count=5)
    start = mark(csms)
    await csms.remote_stop(CP_ID, transaction_id)
    await status_reached(csms, "Finishing", after=start)  # the queue moved on
    assert len(calls(csms, "StopTransaction", after=start)) == 2
    assert station.charger.outbox.pending_transaction_messages == 0


async def test_a_half_open_link_is_found_by_ping_and_redialled(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station() as station:
        assert (await csms.change_configuration(CP_ID, "WebSocketPingInterval", "1")) == {
            "status": "Accepted"
        }
        await csms.reset(CP_ID, "Soft")  # the new ping interval applies from the next link
        start = mark(csms)
        await call_index(csms, "BootNotification", after=start)
        await until(station, lambda: station.charger.csms_connected)

        # The CSMS's side goes silent without closing: no pong, no FIN, like a dead router.
        csms._sessions[CP_ID].connection.transport.pause_reading()

        await until(station, lambda: not station.charger.csms_connected)
        await until(station, lambda: station.charger.csms_connected)
        assert calls(csms, "BootNotification", after=start + 1)[1:] == []


async def test_an_unanswered_transaction_message_times_out_and_is_sent_again(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(response_timeout=0.5) as station:
        await csms.change_configuration(CP_ID, "TransactionMessageRetryInterval", "0")
        transaction_id = await start_charging(station, csms)
        csms.ignore_next("StopTransaction")
        start = mark(csms)
        await csms.remote_stop(CP_ID, transaction_id)
        await status_reached(csms, "Finishing", after=start)
        first, second = calls(csms, "StopTransaction", after=start)
        assert first == second
        assert csms.transactions[transaction_id].reason == "Remote"
        # the link survived the silence, and the next exchange is matched correctly
        assert (await csms.unlock_connector(CP_ID, 1)) == {"status": "Unlocked"}


async def test_a_new_heartbeat_interval_takes_effect_at_once(
    station: Station, csms: CentralSystem
) -> None:
    # Booted with 300 s: without the change no Heartbeat would come for five minutes.
    start = mark(csms)
    assert (await csms.change_configuration(CP_ID, "HeartbeatInterval", "1")) == {
        "status": "Accepted"
    }
    await csms.wait_for_call(CP_ID, "Heartbeat", after=start, timeout=5)


async def test_a_heartbeat_interval_from_a_boot_notification_takes_effect_at_once(
    station: Station, csms: CentralSystem
) -> None:
    csms.heartbeat_interval = 1
    start = mark(csms)
    assert (await csms.trigger_message(CP_ID, "BootNotification")) == {"status": "Accepted"}
    await csms.wait_for_call(CP_ID, "Heartbeat", after=start, timeout=5)
    assert station.charger.configuration.get_int(K.heartbeat_interval) == 1
