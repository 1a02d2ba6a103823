"""TC_071: clock-aligned meter values, at every instant the day divides into by
ClockAlignedDataInterval, for each connector, against a real CSMS on loopback."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from cp_pi.station.configuration import ChangeResult
from tests.conftest import CP_ID
from tests.ocpp16.helpers import mark
from tests.ocpp16.test_unlock_connector import start_charging

ENERGY, POWER = "Energy.Active.Import.Register", "Power.Active.Import"


async def configure(csms: CentralSystem, **keys: str) -> None:
    for key, value in keys.items():
        answer = await csms.change_configuration(CP_ID, key, value)
        assert answer == {"status": ChangeResult.ACCEPTED.value}, key


async def next_clock_reading(csms: CentralSystem, *, after: int) -> tuple[int, dict[str, Any]]:
    """The next clock-aligned MeterValues past `after`: its position and payload."""
    record = await csms.wait_for_call(
        CP_ID,
        "MeterValues",
        where=lambda p: p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock",
        after=after,
    )
    return csms.frames.index(record), record.frame[3]


def taken_at(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["meterValue"][0]["timestamp"])


async def test_tc_071_clock_aligned_meter_values_while_charging(
    station: Station, csms: CentralSystem
) -> None:
    await configure(
        csms,
        MeterValueSampleInterval="0",
        ClockAlignedDataInterval="3600",
        MeterValuesAlignedData=f"{ENERGY},{POWER}",
    )
    transaction_id = await start_charging(station, csms)

    start = mark(csms)
    await configure(csms, ClockAlignedDataInterval="1")  # at once, not after the hour
    first, earlier = await next_clock_reading(csms, after=start)
    _, later = await next_clock_reading(csms, after=first + 1)

    for payload in (earlier, later):
        assert payload["connectorId"] == 1
        assert payload["transactionId"] == transaction_id
        assert taken_at(payload).microsecond == 0  # on the second, not whenever a timer fired
        sampled = payload["meterValue"][0]["sampledValue"]
        assert [(s["measurand"], s["unit"], s["context"]) for s in sampled] == [
            (ENERGY, "Wh", "Sample.Clock"),
            (POWER, "W", "Sample.Clock"),
        ]
        assert sampled[1]["value"] == "11000"  # the rig's vehicle draws while the contactor is on
    # One interval apart; a loop stalled past an instant skips it rather than read it late.
    apart = taken_at(later) - taken_at(earlier)
    assert apart >= timedelta(seconds=1)
    assert apart % timedelta(seconds=1) == timedelta(0)


async def test_tc_071_an_idle_connector_reads_at_the_aligned_instants_too(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    await configure(csms, ClockAlignedDataInterval="1")
    _, payload = await next_clock_reading(csms, after=start)

    assert payload["connectorId"] == 1
    assert "transactionId" not in payload
    assert taken_at(payload).microsecond == 0
    (sampled,) = payload["meterValue"][0]["sampledValue"]  # an empty list means the register
    assert (sampled["measurand"], sampled["value"]) == (ENERGY, "0")
