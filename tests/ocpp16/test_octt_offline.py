"""OCTT 1.6 charge point cases about losing the central system: what is charged meanwhile, and
what it hears when the link is back. Each test is named after its case."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig
from tests.conftest import CP_ID
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until
from tests.ocpp16.test_link import csms_outage
from tests.ocpp16.test_octt_core import configure
from tests.ocpp16.test_unlock_connector import TAG, start_charging


async def test_tc_036_meter_values_taken_offline_arrive_in_order(
    station: Station, csms: CentralSystem
) -> None:
    await configure(csms, MeterValueSampleInterval="1")
    transaction_id = await start_charging(station, csms)
    outbox = station.charger.outbox
    await csms_outage(station, csms)
    await until(station, lambda: outbox.pending_transaction_messages >= 3)
    queued = outbox.pending_transaction_messages

    start = mark(csms)
    await csms.start()
    sent: list[dict[str, Any]] = []
    after = start
    while len(sent) < queued:
        record = await csms.wait_for_call(CP_ID, "MeterValues", after=after)
        sent.append(record.frame[3])
        after = csms.frames.index(record) + 1
    times = [datetime.fromisoformat(m["meterValue"][0]["timestamp"]) for m in sent]
    assert times == sorted(times)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    assert all(0.9 <= gap < 2 for gap in gaps[: queued - 1]), gaps
    for message in sent:
        assert message["transactionId"] == transaction_id
        for sample in message["meterValue"][0]["sampledValue"]:
            assert sample.get("context", "Sample.Periodic") == "Sample.Periodic"
            assert sample.get("format", "Raw") == "Raw"


async def test_tc_037_1_a_transaction_started_offline_is_reported_when_back(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(csms, LocalAuthorizeOffline="true", AllowOfflineTxForUnknownId="true")
    rig.plug(1)
    await csms_outage(station, csms)
    station.charger.swipe(1, TAG)
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)

    start = mark(csms)
    await csms.start()
    started = await call_index(csms, "StartTransaction", after=start, idTag=TAG)
    charging = await status_reached(csms, "Charging", after=start)
    assert started < charging
    tx = station.connectors[1].transaction
    assert tx is not None
    await until(station, lambda: tx.transaction_id is not None)
    assert tx.transaction_id == max(csms.transactions)


async def test_tc_037_3_an_offline_start_refused_when_back_is_deauthorized(
    station: Station, rig: BenchRig, csms: CentralSystem
) -> None:
    await configure(
        csms,
        LocalAuthorizeOffline="true",
        AllowOfflineTxForUnknownId="true",
        StopTransactionOnInvalidId="true",
    )
    csms.authorized_tags = {"SOMEONE-ELSE"}
    rig.plug(1)
    await csms_outage(station, csms)
    station.charger.swipe(1, "STRANGER")
    await until(station, lambda: station.connectors[1].hardware.contactor_closed)

    start = mark(csms)
    await csms.start()
    await call_index(csms, "StartTransaction", after=start, idTag="STRANGER")
    stop = await call_index(csms, "StopTransaction", after=start, reason="DeAuthorized")
    await status_reached(csms, "Finishing", after=start)
    assert csms.frames[stop].frame[3]["transactionId"] == max(csms.transactions)
    assert not station.connectors[1].hardware.contactor_closed


async def test_tc_038_a_transaction_stopped_offline_is_reported_when_back(
    station: Station, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    await csms_outage(station, csms)
    station.charger.swipe(1, TAG)
    await until(station, lambda: station.connectors[1].transaction is None)

    start = mark(csms)
    await csms.start()
    stop = await csms.wait_for_call(CP_ID, "StopTransaction", after=start)
    assert stop.frame[3]["transactionId"] == transaction_id
    assert stop.frame[3].get("reason", "Local") == "Local"
    await status_reached(csms, "Finishing", after=start)
    assert len(calls(csms, "StopTransaction", after=start)) == 1
