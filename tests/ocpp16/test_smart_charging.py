"""Smart Charging against the real charge point over a websocket: the OCTT 1.6 cases (TC_056 to
TC_060, TC_066, TC_067, TC_072), the bounds the configuration keys set, storage across a restart,
and the limit following the schedule on time."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, StationFactory, rig_of
from tests.ocpp16.helpers import LogWatch, mark, until
from tests.ocpp16.test_unlock_connector import TAG, start_charging


def at(seconds: float = 0) -> str:
    """An OCPP dateTime ``seconds`` from now."""
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def profile(
    id: int,
    purpose: str,
    periods: list[tuple[int, float]],
    *,
    stack_level: int = 0,
    kind: str = "Absolute",
    unit: str = "A",
    start: float | None = -5,
    **fields: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": limit} for s, limit in periods],
    }
    if start is not None:
        schedule["startSchedule"] = at(start)
    schedule.update(fields.pop("schedule", {}))
    return {
        "chargingProfileId": id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **fields,
    }


def periods(answer: dict[str, Any]) -> list[tuple[int, float]]:
    """(startPeriod, limit) of a GetCompositeSchedule answer, limits as plain numbers."""
    return [
        (p["startPeriod"], float(p["limit"]))
        for p in answer["chargingSchedule"]["chargingSchedulePeriod"]
    ]


def limit_of(station: Station, connector: int = 1) -> tuple[float | None, str | None]:
    limit = station.charger.smart_charging.limits.get(connector)
    return (None, None) if limit is None else (round(limit.amps, 1), limit.source.value)


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("cp_pi.smart_charging")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


async def set_profile(csms: CentralSystem, connector: int, payload: dict[str, Any]) -> str:
    answer = await csms.set_charging_profile(CP_ID, connector, payload)
    return str(answer["status"])


# -- SetChargingProfile -------------------------------------------------------------------------


async def test_tc_056_tx_default_profile_limits_the_connector(
    station: Station, csms: CentralSystem
) -> None:
    default = profile(1, "TxDefaultProfile", [(0, 16), (3600, 10)], schedule={"duration": 7200})
    assert await set_profile(csms, 1, default) == "Accepted"
    assert limit_of(station) == (16.0, "TxDefaultProfile")
    answer = await csms.get_composite_schedule(CP_ID, 1, 600, "A")
    assert answer["status"] == "Accepted"
    assert answer["connectorId"] == 1
    assert answer["chargingSchedule"]["duration"] == 600
    assert periods(answer) == [(0, 16.0)]


async def test_tc_057_tx_profile_for_the_running_transaction(
    station: Station, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    tx = station.connectors[1].transaction
    assert tx is not None
    await until(station, lambda: tx.transaction_id is not None)
    assert await set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 16)])) == "Accepted"
    tx_profile = profile(2, "TxProfile", [(0, 8)], transactionId=transaction_id)
    assert await set_profile(csms, 1, tx_profile) == "Accepted"
    assert limit_of(station) == (8.0, "TxProfile")


async def test_tc_058_1_tx_profile_without_a_transaction_is_rejected(
    station: Station, csms: CentralSystem, log_watch: LogWatch
) -> None:
    tx_profile = profile(1, "TxProfile", [(0, 8)], transactionId=1)
    assert await set_profile(csms, 1, tx_profile) == "Rejected"
    await log_watch.seen("needs a transaction running")
    assert station.charger.smart_charging.installed == []


async def test_tc_058_2_tx_profile_of_another_transaction_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    tx = station.connectors[1].transaction
    assert tx is not None
    await until(station, lambda: tx.transaction_id is not None)
    wrong = profile(1, "TxProfile", [(0, 8)], transactionId=transaction_id + 100)
    assert await set_profile(csms, 1, wrong) == "Rejected"
    assert limit_of(station) == (None, None)


async def test_tc_059_remote_start_with_a_tx_profile_follows_it(
    station: Station, csms: CentralSystem
) -> None:
    start = mark(csms)
    rig_of(station).plug(1)
    tx_profile = profile(5, "TxProfile", [(0, 10), (60, 20)], kind="Relative", start=None)
    answer = await csms.remote_start(CP_ID, TAG, 1, charging_profile=tx_profile)
    assert answer == {"status": "Accepted"}
    await csms.wait_for_call(CP_ID, "StartTransaction", after=start)
    await until(station, lambda: limit_of(station) == (10.0, "TxProfile"))
    composite = await csms.get_composite_schedule(CP_ID, 1, 120, "A")
    # Relative to the transaction's start: 20 A from its 60th second on.
    (first, second) = periods(composite)
    assert first == (0, 10.0)
    assert second[1] == 20.0
    assert 55 <= second[0] <= 60


async def test_tc_060_remote_start_with_another_purpose_is_rejected(
    station: Station, csms: CentralSystem
) -> None:
    rig_of(station).plug(1)
    default = profile(5, "TxDefaultProfile", [(0, 10)])
    answer = await csms.remote_start(CP_ID, TAG, 1, charging_profile=default)
    assert answer == {"status": "Rejected"}
    assert station.connectors[1].transaction is None


async def test_charge_point_max_profile_on_a_connector_is_rejected(
    station: Station, csms: CentralSystem, log_watch: LogWatch
) -> None:
    assert await set_profile(csms, 1, profile(1, "ChargePointMaxProfile", [(0, 10)])) == (
        "Rejected"
    )
    await log_watch.seen("on connector 0 only")
    assert await set_profile(csms, 0, profile(1, "ChargePointMaxProfile", [(0, 10)])) == (
        "Accepted"
    )
    assert limit_of(station) == (10.0, "ChargePointMaxProfile")


async def test_same_id_or_same_purpose_and_stack_level_replaces(
    station: Station, csms: CentralSystem
) -> None:
    smart = station.charger.smart_charging
    assert await set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 16)])) == "Accepted"
    assert await set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 12)])) == "Accepted"
    assert [(p.id, p.periods[0].limit) for p in smart.installed] == [(1, 12.0)]
    assert await set_profile(csms, 1, profile(2, "TxDefaultProfile", [(0, 9)])) == "Accepted"
    assert [(p.id, p.periods[0].limit) for p in smart.installed] == [(2, 9.0)]
    assert limit_of(station) == (9.0, "TxDefaultProfile")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (profile(1, "TxDefaultProfile", [(0, 16)], stack_level=9), "ChargeProfileMaxStackLevel"),
        (
            profile(1, "TxDefaultProfile", [(s * 60, 16) for s in range(49)]),
            "ChargingScheduleMaxPeriods",
        ),
        (profile(1, "TxDefaultProfile", [(0, 16)], validTo=at(-60)), "validTo has passed"),
        (profile(1, "TxDefaultProfile", [(10, 16)]), "must start at 0"),
    ],
    ids=["stack level", "periods", "expired", "first period"],
)
async def test_limits_are_enforced_with_a_reason_in_the_log(
    station: Station,
    csms: CentralSystem,
    log_watch: LogWatch,
    payload: dict[str, Any],
    reason: str,
) -> None:
    assert await set_profile(csms, 1, payload) == "Rejected"
    await log_watch.seen(reason)
    assert station.charger.smart_charging.installed == []


async def test_max_charging_profiles_installed_is_enforced(
    station: Station, csms: CentralSystem, log_watch: LogWatch
) -> None:
    for n in range(16):
        payload = profile(n + 1, "TxDefaultProfile", [(0, 16)], stack_level=n % 9)
        assert await set_profile(csms, n // 9, payload) == "Accepted"
    assert await set_profile(csms, 0, profile(99, "ChargePointMaxProfile", [(0, 16)])) == (
        "Rejected"
    )
    await log_watch.seen("MaxChargingProfilesInstalled")
    # Replacing one is not one more.
    assert await set_profile(csms, 0, profile(1, "TxDefaultProfile", [(0, 8)])) == "Accepted"


SAMPLE = profile(1, "TxDefaultProfile", [(0, 16)])


@pytest.mark.parametrize(
    ("profiles", "code"),
    [
        ({"chargingProfileId": 1, "stackLevel": 0}, "OccurenceConstraintViolation"),
        (
            {**profile(1, "TxDefaultProfile", [(0, 16)]), "stackLevel": "high"},
            "TypeConstraintViolation",
        ),
        ({**SAMPLE, "colour": "red"}, "FormationViolation"),
    ],
    ids=["missing", "type", "extra"],
)
async def test_schema_errors_get_their_callerror(
    station: Station, csms: CentralSystem, profiles: dict[str, Any], code: str
) -> None:
    frame = [2, "sc-1", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profiles}]
    answer = await csms.send_raw(CP_ID, json.dumps(frame), unique_id="sc-1")
    assert answer is not None
    assert answer[:3] == [4, "sc-1", code]
    assert station.charger.smart_charging.installed == []


# -- GetCompositeSchedule -----------------------------------------------------------------------


async def test_tc_066_composite_of_the_three_purposes(
    station: Station, csms: CentralSystem
) -> None:
    """TC_066_CS: a ChargePointMaxProfile of 10 A for a day on connector 0, a TxDefaultProfile
    and the transaction's TxProfile; composite for 400 s: the TxProfile where it has periods,
    the default after it, never above 10 A."""
    transaction_id = await start_charging(station, csms)
    tx = station.connectors[1].transaction
    assert tx is not None
    await until(station, lambda: tx.transaction_id is not None)
    cp_max = profile(1, "ChargePointMaxProfile", [(0, 10)], start=0, schedule={"duration": 86400})
    default = profile(
        2, "TxDefaultProfile", [(0, 6), (100, 8), (200, 12)], start=0, schedule={"duration": 400}
    )
    tx_profile = profile(
        3, "TxProfile", [(0, 7), (50, 16)], start=0, transactionId=transaction_id,
        schedule={"duration": 260},
    )  # fmt: skip
    for connector, payload in ((0, cp_max), (1, default), (1, tx_profile)):
        assert await set_profile(csms, connector, payload) == "Accepted"
    answer = await csms.get_composite_schedule(CP_ID, 1, 400, "A")
    assert answer["chargingSchedule"]["chargingRateUnit"] == "A"
    found = periods(answer)
    # The ChargePointMaxProfile caps the TxProfile's 16 A and, after it, the default's 12 A.
    assert [limit for _, limit in found] == [7.0, 10.0]
    # Up to a second passes between setting and asking: the step may come a second early.
    assert 48 <= found[1][0] <= 50
    assert all(limit <= 10.0 for _, limit in found)


async def test_tc_072_stacking_a_higher_level_leads_while_it_has_periods(
    station: Station, csms: CentralSystem
) -> None:
    low = profile(
        1, "TxDefaultProfile", [(0, 6), (100, 8), (200, 10)], start=0, schedule={"duration": 400}
    )
    high = profile(
        2, "TxDefaultProfile", [(0, 10), (100, 7)], stack_level=1, start=0,
        schedule={"duration": 150},
    )  # fmt: skip
    assert await set_profile(csms, 1, low) == "Accepted"
    assert await set_profile(csms, 1, high) == "Accepted"
    answer = await csms.get_composite_schedule(CP_ID, 1, 350, "A")
    limits = [limit for _, limit in periods(answer)]
    assert limits == [10.0, 7.0, 8.0, 10.0]
    starts = [start for start, _ in periods(answer)]
    assert all(abs(s - e) <= 1 for s, e in zip(starts, [0, 100, 150, 200], strict=True))


async def test_composite_in_watts_for_connector_zero_and_unknown_connector(
    station: Station, csms: CentralSystem
) -> None:
    assert await set_profile(csms, 0, profile(1, "ChargePointMaxProfile", [(0, 16)])) == (
        "Accepted"
    )
    answer = await csms.get_composite_schedule(CP_ID, 0, 3600, "W")
    assert answer["chargingSchedule"]["chargingRateUnit"] == "W"
    assert periods(answer) == [(0, 11040.0)]  # 16 A x 230 V x 3 phases
    without = await csms.get_composite_schedule(CP_ID, 1, 60)
    assert periods(without) == [(0, 16.0)]
    assert await csms.get_composite_schedule(CP_ID, 7, 60) == {"status": "Rejected"}


async def test_composite_without_profiles_is_the_connector_maximum(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.get_composite_schedule(CP_ID, 1, 86400)
    assert answer["status"] == "Accepted"
    assert periods(answer) == [(0, 32.0)]
    assert isinstance(
        answer["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], (float, Decimal)
    )


# -- ClearChargingProfile -----------------------------------------------------------------------


async def test_tc_067_clear_by_id_by_criteria_and_all(
    station: Station, csms: CentralSystem
) -> None:
    smart = station.charger.smart_charging
    assert await set_profile(csms, 0, profile(1, "ChargePointMaxProfile", [(0, 20)])) == (
        "Accepted"
    )
    assert await set_profile(csms, 1, profile(2, "TxDefaultProfile", [(0, 6)])) == "Accepted"
    assert await set_profile(csms, 1, profile(3, "TxDefaultProfile", [(0, 8)], stack_level=1)) == (
        "Accepted"
    )
    assert limit_of(station) == (8.0, "TxDefaultProfile")

    assert await csms.clear_charging_profile(CP_ID, id=3) == {"status": "Accepted"}
    assert limit_of(station) == (6.0, "TxDefaultProfile")
    assert await csms.clear_charging_profile(CP_ID, id=3) == {"status": "Unknown"}
    answer = await csms.clear_charging_profile(
        CP_ID, connector_id=1, purpose="TxDefaultProfile", stack_level=0
    )
    assert answer == {"status": "Accepted"}
    assert limit_of(station) == (20.0, "ChargePointMaxProfile")
    assert await csms.clear_charging_profile(CP_ID, purpose="TxProfile") == {"status": "Unknown"}
    assert await csms.clear_charging_profile(CP_ID) == {"status": "Accepted"}
    assert smart.installed == []
    assert limit_of(station) == (None, None)
    assert await csms.clear_charging_profile(CP_ID) == {"status": "Unknown"}


# -- lifetime -----------------------------------------------------------------------------------


async def test_profiles_survive_a_restart_and_tx_profiles_end_with_their_transaction(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station() as station:
        transaction_id = await start_charging(station, csms)
        tx = station.connectors[1].transaction
        assert tx is not None
        await until(station, lambda: tx.transaction_id is not None)
        assert await set_profile(csms, 0, profile(1, "ChargePointMaxProfile", [(0, 20)])) == (
            "Accepted"
        )
        assert await set_profile(
            csms, 1, profile(2, "TxProfile", [(0, 8)], transactionId=transaction_id)
        ) == ("Accepted")
        assert limit_of(station) == (8.0, "TxProfile")
    # The process ends with the transaction open: it is ended with PowerLoss at the next start,
    # and its TxProfile with it; the ChargePointMaxProfile stays.
    async with make_station() as station:
        assert [p.id for p in station.charger.smart_charging.installed] == [1]
        await until(station, lambda: limit_of(station) == (20.0, "ChargePointMaxProfile"))


async def test_tx_profile_is_removed_when_its_transaction_stops(
    station: Station, csms: CentralSystem
) -> None:
    transaction_id = await start_charging(station, csms)
    tx = station.connectors[1].transaction
    assert tx is not None
    await until(station, lambda: tx.transaction_id is not None)
    assert await set_profile(
        csms, 1, profile(2, "TxProfile", [(0, 8)], transactionId=transaction_id)
    ) == ("Accepted")
    assert await csms.remote_stop(CP_ID, transaction_id) == {"status": "Accepted"}
    await until(station, lambda: station.connectors[1].transaction is None)
    await until(station, lambda: station.charger.smart_charging.installed == [])
    assert station.store.charging_profiles() == []
    assert limit_of(station) == (None, None)


async def test_limit_changes_on_time_at_a_period_boundary_and_at_valid_to(
    station: Station, csms: CentralSystem
) -> None:
    """No polling: the next change is scheduled, and arrives within a second of its instant."""
    now = datetime.now(UTC).replace(microsecond=0)
    begin = now - timedelta(seconds=60)
    payload = profile(
        1, "TxDefaultProfile", [(0, 16), (61, 8)], start=None,
        schedule={"startSchedule": begin.strftime("%Y-%m-%dT%H:%M:%SZ")},
        validTo=(now + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )  # fmt: skip
    assert await set_profile(csms, 1, payload) == "Accepted"
    assert limit_of(station) == (16.0, "TxDefaultProfile")
    change = (now + timedelta(seconds=1)).timestamp()
    await until(station, lambda: limit_of(station) == (8.0, "TxDefaultProfile"), timeout=5)
    assert time.time() - change < 1.0
    expiry = (now + timedelta(seconds=2)).timestamp()
    await until(station, lambda: limit_of(station) == (None, None), timeout=5)
    assert time.time() - expiry < 1.0
    assert time.time() >= expiry - 0.01
    await asyncio.sleep(0)
    assert station.charger.smart_charging.installed == []
    assert station.store.charging_profiles() == []


async def test_a_composite_schedule_for_years_reports_a_month(
    station: Station, csms: CentralSystem
) -> None:
    daily = profile(
        1, "TxDefaultProfile", [(0, 16), (3600, 8)], kind="Recurring", recurrencyKind="Daily"
    )
    assert await set_profile(csms, 1, daily) == "Accepted"
    answer = await csms.get_composite_schedule(CP_ID, 1, 10 * 365 * 86400)
    assert answer["chargingSchedule"]["duration"] == 31 * 86400
    assert 62 <= len(periods(answer)) <= 63


async def test_a_hidden_profile_still_leaves_at_its_valid_to(
    station: Station, csms: CentralSystem, log_watch: LogWatch
) -> None:
    top = profile(1, "TxDefaultProfile", [(0, 10)], stack_level=1)
    hidden = profile(2, "TxDefaultProfile", [(0, 16)], validTo=at(1))
    assert await set_profile(csms, 1, top) == "Accepted"
    assert await set_profile(csms, 1, hidden) == "Accepted"
    await log_watch.seen("charging profiles [2] removed: past their validTo", timeout=5)
    assert [p.id for p in station.charger.smart_charging.installed] == [1]
    assert [payload["charging_profile_id"] for _, payload in station.store.charging_profiles()] == [
        1
    ]
    assert limit_of(station) == (10.0, "TxDefaultProfile")


async def test_the_next_change_is_scheduled_for_its_instant_not_polled(
    station: Station, csms: CentralSystem
) -> None:
    """The state tells when the limit changes next: the one instant the charge point wakes."""
    begin = datetime.now(UTC).replace(microsecond=0)
    weekly = profile(
        1, "TxDefaultProfile", [(0, 16), (3600, 8)], kind="Recurring", recurrencyKind="Weekly",
        start=None, schedule={"startSchedule": begin.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )  # fmt: skip
    assert await set_profile(csms, 1, weekly) == "Accepted"
    (entry,) = station.charger.state()["charging_limits"]
    assert entry["limit_a"] == 16.0
    assert entry["next_change"] == (begin + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await csms.clear_charging_profile(CP_ID) == {"status": "Accepted"}
    (entry,) = station.charger.state()["charging_limits"]
    assert entry == {"connector": 1, "limit_a": None, "source": None, "next_change": None}
