"""A hostile or broken central system gets bounded work, and the link stays honest.

The central system here is :class:`RawCsms`, written by hand on websockets so that it can flood,
answer nonsense or stay silent, as the polite embedded one never does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.app import Station, build_station, running_station, shutdown
from cp_pi.hardware.rig import RigFault
from cp_pi.ocpp16.link import Link
from cp_pi.ocpp16.session import OcppSession
from tests.conftest import fast_settings, rig_of
from tests.ocpp16.helpers import until
from tests.ocpp16.raw_csms import RawCsms

TAG = "TAG1"


@asynccontextmanager
async def charge_point(
    tmp_path: Path, raw: RawCsms, *, response_timeout: float = 5, **changes: Any
) -> AsyncIterator[Station]:
    """A charge point on mock pins, booted against the raw central system."""
    settings = fast_settings(tmp_path / "data", raw.url, **changes)
    async with running_station(settings, response_timeout=response_timeout) as station:
        await raw.until(lambda: raw.count("StatusNotification") >= 1)
        yield station


def session_of(station: Station) -> OcppSession:
    assert station.link is not None
    assert station.link.session is not None
    return station.link.session


async def settled(condition: Callable[[], bool], timeout: float = 5) -> None:
    """For what no event announces (tasks ending): look again each few milliseconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  (no event says a task has ended)
            await asyncio.sleep(0.005)


FLOOD = [
    ("UnlockConnector", {"connectorId": 9}, {"status": "NotSupported"}),
    (
        "GetConfiguration",
        {"key": ["HeartbeatInterval"]},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
    ),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}, None),
]


async def test_a_flood_of_calls_gets_every_answer_with_at_most_the_bound_in_hand(
    tmp_path: Path,
) -> None:
    count = 900
    async with RawCsms() as raw, charge_point(tmp_path, raw, max_requests_in_flight=2) as station:
        idle_tasks = len(asyncio.all_tasks())
        for number in range(count):
            action, payload, _ = FLOOD[number % len(FLOOD)]
            await raw.send([2, f"f{number}", action, payload])  # never waiting for an answer
        await raw.until(lambda: all(f"f{number}" in raw.replies for number in range(count)))

        for number in range(count):
            action, _, expected = FLOOD[number % len(FLOOD)]
            expected = expected or {"status": "Accepted"}
            assert raw.replies[f"f{number}"] == [3, f"f{number}", expected], action
        session = session_of(station)
        assert session.peak_requests_in_flight == 2
        await settled(lambda: session.requests_in_flight == 0)
        await settled(lambda: len(asyncio.all_tasks()) == idle_tasks)
        # The triggered statuses coalesced: far fewer than one per trigger reached the CSMS.
        assert raw.count("StatusNotification") < count // len(FLOOD) // 2
        assert raw.connections == 1


async def test_answers_nobody_awaits_are_dropped_at_once(tmp_path: Path) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw, response_timeout=0.3) as station:
        session = session_of(station)
        await station.charger.outbox.drained()  # no CALL of ours outstanding
        for number in range(50):
            await raw.send([3, f"never-sent-{number}", {"junk": "x" * 60_000}])
        await raw.send([2, "probe1", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
        await raw.until(lambda: "probe1" in raw.replies)
        assert session.answers_waiting == 0

        # An answer that comes after its CALL timed out is not taken for the next CALL's.
        raw.answers["Heartbeat"] = lambda _: None
        outbox = station.charger.outbox
        late = outbox.send("Heartbeat", {})
        await asyncio.wait([late])
        assert isinstance(late.exception(), TimeoutError)
        await raw.send([3, raw.last_id["Heartbeat"], {"currentTime": "2001-01-01T00:00:00Z"}])
        await raw.send([2, "probe2", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
        await raw.until(lambda: "probe2" in raw.replies)
        assert session.answers_waiting == 0
        raw.answers["Heartbeat"] = lambda _: {"currentTime": "2026-01-01T00:00:00Z"}
        assert (await outbox.send("Heartbeat", {})) == {"currentTime": "2026-01-01T00:00:00Z"}


async def start_charging(station: Station, raw: RawCsms, *, tag: str = TAG) -> None:
    rig = rig_of(station)
    rig.plug(1)
    station.charger.swipe(1, tag)
    await until(station, lambda: station.connectors[1].transaction is not None)


async def test_a_transaction_id_the_store_cannot_keep_is_refused_and_delivery_goes_on(
    tmp_path: Path,
) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw) as station:
        station.charger.configuration.change(K.transaction_message_retry_interval, "0")
        ids = iter([2**70, 7])
        raw.answers["StartTransaction"] = lambda _: {
            "transactionId": next(ids),
            "idTagInfo": {"status": "Accepted"},
        }
        await start_charging(station, raw)
        tx = station.connectors[1].transaction
        assert tx is not None
        await until(station, lambda: tx.transaction_id == 7)
        assert raw.count("StartTransaction") == 2

        station.charger.swipe(1, TAG)
        await raw.until(lambda: raw.count("StopTransaction") == 1)
        assert next(p for a, p in raw.calls if a == "StopTransaction")["transactionId"] == 7
        assert raw.connections == 1  # the link never went half alive nor down


async def test_timeouts_keep_a_transaction_message_until_it_is_answered(tmp_path: Path) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw, response_timeout=0.2) as station:
        station.charger.configuration.change(K.transaction_message_retry_interval, "0")
        silent = iter(range(4))  # more timeouts than TransactionMessageAttempts (3)
        answer_start = raw.answers["StartTransaction"]
        raw.answers["StartTransaction"] = lambda p: (
            None if next(silent, None) is not None else (answer_start(p))
        )
        await start_charging(station, raw)
        await raw.until(lambda: raw.count("StartTransaction") == 5)
        tx = station.connectors[1].transaction
        assert tx is not None
        await until(station, lambda: tx.transaction_id is not None)
        assert station.charger.outbox.pending_transaction_messages == 0


async def test_no_transaction_message_goes_out_with_an_id_the_csms_did_not_give(
    tmp_path: Path,
) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw) as station:
        configuration = station.charger.configuration
        configuration.change(K.transaction_message_retry_interval, "0")
        configuration.change(K.transaction_message_attempts, "2")
        raw.refuse.add("StartTransaction")
        await start_charging(station, raw)
        await raw.until(lambda: raw.count("StartTransaction") == 2)  # then discarded

        raw.refuse.clear()
        station.charger.swipe(1, TAG)
        await until(station, lambda: station.connectors[1].transaction is None)
        await until(station, lambda: station.charger.outbox.pending_transaction_messages == 0)
        assert raw.count("StopTransaction") == 0
        assert all(p.get("transactionId") != -1 for _, p in raw.calls)


async def test_a_drivers_authorize_is_not_held_behind_a_message_waiting_for_its_retry(
    tmp_path: Path,
) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw) as station:
        station.charger.configuration.change(K.transaction_message_retry_interval, "30")
        await start_charging(station, raw)
        raw.refuse.add("StopTransaction")
        station.charger.swipe(1, TAG)
        await raw.until(lambda: raw.count("StopTransaction") == 1)  # next try in 30 s
        rig = rig_of(station)
        connector = station.charger.connectors[1]
        await until(station, lambda: not connector.busy.locked())  # the first stop is over
        rig.unplug(1)
        rig.plug(1)
        station.charger.swipe(1, "SECOND")
        await raw.until(lambda: raw.count("Authorize") == 2, timeout=5)
        assert raw.count("StopTransaction") == 1
        assert station.charger.outbox.pending_transaction_messages >= 1


async def test_waiting_statuses_and_triggered_meter_values_coalesce_per_connector(
    tmp_path: Path,
) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw, response_timeout=0.5) as station:
        raw.answers["Heartbeat"] = lambda _: None
        outbox = station.charger.outbox
        await outbox.drained()
        stuck = outbox.send("Heartbeat", {})  # holds the queue for half a second
        statuses, meter_values = raw.count("StatusNotification"), raw.count("MeterValues")
        for number in range(40):
            for message in ("StatusNotification", "MeterValues"):
                request = {"requestedMessage": message, "connectorId": 1}
                await raw.send([2, f"t{number}{message}", "TriggerMessage", request])
        await raw.until(lambda: len(raw.replies) == 80)
        await asyncio.wait([stuck])
        await outbox.drained()
        assert raw.count("StatusNotification") == statuses + 1
        assert raw.count("MeterValues") == meter_values + 1


async def test_the_backoff_starts_afresh_only_once_the_csms_answered_on_the_link(
    tmp_path: Path,
) -> None:
    async with RawCsms(close_at_once=True) as raw:
        station = build_station(fast_settings(tmp_path / "data", raw.url))
        link = Link(station.charger, raw.url, backoff_first=0.01)
        running = asyncio.create_task(link.run())
        try:
            await raw.until(lambda: raw.connections == 4)
            assert link.failures_in_a_row >= 3  # accepted links that proved nothing

            raw.close_at_once = False
            await raw.until(lambda: raw.count("BootNotification") == 1, timeout=30)
            await raw.until(lambda: raw.count("StatusNotification") >= 1)
            assert raw.connection is not None
            await raw.connection.close()
            await raw.until(lambda: raw.connections >= 6)
            assert link.failures_in_a_row <= 1  # counted afresh from the proven link
        finally:
            running.cancel()
            await asyncio.wait([running])
            await shutdown(station)


async def test_deeply_nested_json_gets_a_formation_violation_and_the_session_lives_on(
    tmp_path: Path,
) -> None:
    nested = "[" * 20_000 + "]" * 20_000  # fits the size limit, not the parser's recursion
    async with RawCsms() as raw, charge_point(tmp_path, raw):
        await raw.send(f'[2,"deep","GetConfiguration",{{"key":{nested}}}]')
        await raw.send("[" * 20_000)  # no id to be read: answered under OCPP-J's "-1"
        await raw.send([2, "probe", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
        await raw.until(lambda: {"deep", "-1", "probe"} <= raw.replies.keys())
        assert raw.replies["deep"][:3] == [4, "deep", "FormationViolation"]
        assert raw.replies["-1"][:3] == [4, "-1", "FormationViolation"]
        assert raw.replies["probe"][0] == 3
        assert raw.connections == 1


async def test_pings_from_a_peer_that_never_reads_do_not_pile_up_pongs(tmp_path: Path) -> None:
    async with RawCsms() as raw, charge_point(tmp_path, raw) as station:
        csms_side = raw.connection
        assert csms_side is not None
        csms_side.transport.pause_reading()  # the central system reads nothing more
        for _ in range(40_000):  # 5 MB of pings, as many pongs owed
            csms_side.protocol.send_ping(b"p" * 125)
        csms_side.send_data()
        await settled(lambda: csms_side.transport.get_write_buffer_size() == 0)
        for _ in range(20):  # let the charge point read what it will
            await asyncio.sleep(0)
        pongs = session_of(station).connection.transport.get_write_buffer_size()
        # At most one read's worth beyond the write limit (32 KiB), not 5 MB less the kernel's.
        assert pongs < 300_000
        csms_side.transport.resume_reading()


async def test_during_a_flood_a_driver_charges_and_a_lock_opening_still_stops_energy(
    tmp_path: Path,
) -> None:
    async def flood() -> None:
        for number in itertools.count():
            await raw.send([2, f"s{number}", "GetConfiguration", {"key": ["HeartbeatInterval"]}])

    async with RawCsms() as raw, charge_point(tmp_path, raw) as station:
        flooding = asyncio.create_task(flood())
        try:
            await start_charging(station, raw)  # Authorize and StartTransaction get through
            connector = station.connectors[1]
            await until(station, lambda: connector.status()[0].value == "Charging")
            rig = rig_of(station)
            rig.set_fault(1, RigFault.FEEDBACK_BROKEN)
            await until(station, lambda: not connector.hardware.contactor_closed)
            await until(station, lambda: connector.transaction is None)
            await raw.until(lambda: raw.count("StopTransaction") == 1)
            assert next(p for a, p in raw.calls if a == "StopTransaction")["reason"] == "Other"
        finally:
            flooding.cancel()
