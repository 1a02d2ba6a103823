"""The composite schedule: worked examples from OCPP 1.6 and its compliance cases, and a property
test against a second-by-second reference on generated profile stacks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cp_pi.core.schedule import (
    DAY,
    WEEK,
    ChargingProfile,
    Kind,
    Period,
    ProfileError,
    Profiles,
    Purpose,
    RateUnit,
    Recurrency,
    Supply,
    composite,
    instant_of,
    next_change,
    profile_from_ocpp,
    profile_to_ocpp,
)

T0 = instant_of("2026-03-02T10:00:00Z")  # a Monday
SUPPLY = Supply(voltage=230.0, phases=3)


def profile(
    id: int,
    purpose: Purpose,
    periods: list[tuple[int, float]],
    *,
    stack_level: int = 0,
    kind: Kind = Kind.ABSOLUTE,
    connector_id: int = 1,
    **changes: Any,
) -> ChargingProfile:
    fields: dict[str, Any] = {"start_schedule": T0} if kind is not Kind.RELATIVE else {}
    fields.update(changes)
    return ChargingProfile(
        id=id,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        unit=fields.pop("unit", RateUnit.AMPS),
        periods=tuple(Period(start, limit) for start, limit in periods),
        connector_id=connector_id,
        **fields,
    )


def steps(
    profiles: Profiles, start: int = T0, end: int = T0 + 1000, unit: RateUnit = RateUnit.AMPS
) -> list[tuple[int, float | None]]:
    return [(p.start, p.limit) for p in composite(profiles, start, end, SUPPLY, unit)]


def test_no_profile_no_limit() -> None:
    profiles = Profiles.select([], 1)
    assert profiles.limit_at(T0, SUPPLY) is None
    assert steps(profiles) == [(0, None)]
    assert next_change(profiles, T0, SUPPLY) is None


def test_tc_072_stacking_a_higher_level_leads_until_its_duration_ends() -> None:
    """TC_072_CS: TxDefaultProfile stack 0 (6, 8, 10 A at 0, 100, 200 s; 400 s) under one at
    stack 1 lasting 150 s: the upper one leads for its 150 s, then the lower one shows again."""
    low = profile(1, Purpose.TX_DEFAULT, [(0, 6), (100, 8), (200, 10)], duration=400)
    high = profile(2, Purpose.TX_DEFAULT, [(0, 10), (100, 7)], stack_level=1, duration=150)
    profiles = Profiles.select([low, high], 1)
    assert steps(profiles, end=T0 + 400) == [(0, 10), (100, 7), (150, 8), (200, 10)]
    assert steps(profiles, end=T0 + 500) == [(0, 10), (100, 7), (150, 8), (200, 10), (400, None)]


def test_tc_066_purposes_charge_point_max_caps_and_tx_profile_replaces_tx_default() -> None:
    """TC_066_CS: a ChargePointMaxProfile of 10 A for a day on connector 0, a TxDefaultProfile
    and a TxProfile on the connector: the TxProfile replaces the default where it has a period,
    and nothing goes above the charge point's 10 A."""
    cp_max = profile(1, Purpose.CHARGE_POINT_MAX, [(0, 10)], connector_id=0, duration=DAY)
    default = profile(2, Purpose.TX_DEFAULT, [(0, 6), (100, 8), (200, 12)], duration=400)
    tx = profile(3, Purpose.TX, [(0, 7), (50, 16)], duration=260, transaction_id=5)
    profiles = Profiles.select([cp_max, default, tx], 1, transaction_id=5)
    assert steps(profiles, end=T0 + 400) == [(0, 7), (50, 10)]
    # Without the transaction its TxProfile does not count: the default shows.
    without = Profiles.select([cp_max, default, tx], 1)
    assert steps(without, end=T0 + 400) == [(0, 6), (100, 8), (200, 10)]


def test_a_tx_profile_of_another_transaction_does_not_count() -> None:
    tx = profile(3, Purpose.TX, [(0, 7)], transaction_id=5)
    assert Profiles.select([tx], 1, transaction_id=6).limit_at(T0, SUPPLY) is None


def test_watts_become_amps_through_voltage_and_phases() -> None:
    three = profile(1, Purpose.TX_DEFAULT, [(0, 11040)], unit=RateUnit.WATTS)
    limit = Profiles.select([three], 1).limit_at(T0, SUPPLY)
    assert limit is not None
    assert limit.amps == pytest.approx(16.0)
    one = ChargingProfile(
        1, 0, Purpose.TX_DEFAULT, Kind.ABSOLUTE, RateUnit.WATTS, (Period(0, 3680, 1),),
        connector_id=1, start_schedule=T0,
    )  # fmt: skip
    assert steps(Profiles.select([one], 1), end=T0 + 10) == [(0, 16.0)]
    assert steps(Profiles.select([one], 1), end=T0 + 10, unit=RateUnit.WATTS) == [(0, 3680.0)]
    # A in, W out: 16 A on three phases at 230 V.
    amps = profile(1, Purpose.TX_DEFAULT, [(0, 16)])
    assert steps(Profiles.select([amps], 1), end=T0 + 10, unit=RateUnit.WATTS) == [(0, 11040.0)]


def test_a_limit_is_reported_rounded_down_to_the_schemas_step() -> None:
    watts = profile(1, Purpose.TX_DEFAULT, [(0, 11000)], unit=RateUnit.WATTS)
    assert steps(Profiles.select([watts], 1), end=T0 + 10) == [(0, 15.9)]  # 15.94 A


def test_relative_profile_counts_from_the_transaction_start() -> None:
    relative = profile(1, Purpose.TX_DEFAULT, [(0, 6), (60, 16)], kind=Kind.RELATIVE)
    started = Profiles.select([relative], 1, transaction_id=1, relative_start=T0 - 30)
    assert steps(started, end=T0 + 100) == [(0, 6), (30, 16)]
    assert Profiles.select([relative], 1).limit_at(T0, SUPPLY) is None


def test_daily_recurring_profile_repeats_every_day_and_weekly_every_week() -> None:
    # 8 A from 10:00 for two hours, every day; 16 A for the rest of the day.
    daily = profile(
        1, Purpose.TX_DEFAULT, [(0, 8), (7200, 16)], kind=Kind.RECURRING,
        recurrency=Recurrency.DAILY,
    )  # fmt: skip
    profiles = Profiles.select([daily], 1)
    assert steps(profiles, T0 + 3 * DAY - 60, T0 + 3 * DAY + 7260) == [(0, 16), (60, 8), (7260, 16)]
    weekly = profile(
        1, Purpose.TX_DEFAULT, [(0, 8)], kind=Kind.RECURRING, recurrency=Recurrency.WEEKLY,
        duration=3600,
    )  # fmt: skip
    profiles = Profiles.select([weekly], 1)
    assert profiles.limit_at(T0 + WEEK + 10, SUPPLY) is not None
    assert profiles.limit_at(T0 + DAY + 10, SUPPLY) is None
    assert next_change(profiles, T0 + 3600, SUPPLY) == T0 + WEEK


def test_holiday_profile_above_a_weekly_one_for_its_validity_only() -> None:
    """Section 3.13.4's example: a higher stack level valid for one day overrides the regular
    recurring profile for that day and hides nothing outside it."""
    regular = profile(
        1, Purpose.TX_DEFAULT, [(0, 16)], kind=Kind.RECURRING, recurrency=Recurrency.WEEKLY
    )
    holiday = profile(
        2, Purpose.TX_DEFAULT, [(0, 6)], stack_level=1, valid_from=T0 + DAY, valid_to=T0 + 2 * DAY
    )
    profiles = Profiles.select([regular, holiday], 1)
    assert steps(profiles, T0, T0 + 3 * DAY) == [(0, 16), (DAY, 6), (2 * DAY, 16)]


def test_connector_own_tx_default_ranks_above_connector_zero() -> None:
    everyone = profile(1, Purpose.TX_DEFAULT, [(0, 20)], stack_level=5, connector_id=0)
    own = profile(2, Purpose.TX_DEFAULT, [(0, 10)], stack_level=0, connector_id=1)
    assert steps(Profiles.select([everyone, own], 1), end=T0 + 10) == [(0, 10)]
    assert steps(Profiles.select([everyone, own], 2), end=T0 + 10) == [(0, 20)]


def test_charge_point_max_is_shared_among_charging_connectors() -> None:
    cp_max = profile(1, Purpose.CHARGE_POINT_MAX, [(0, 32)], connector_id=0)
    assert steps(Profiles.select([cp_max], 1, sharing=2), end=T0 + 10) == [(0, 16)]


def test_connector_zero_is_the_charge_point_max_or_the_sum_of_the_connectors() -> None:
    cp_max = profile(1, Purpose.CHARGE_POINT_MAX, [(0, 40)], connector_id=0)
    a = profile(2, Purpose.TX_DEFAULT, [(0, 16), (100, 32)], connector_id=1)
    b = profile(3, Purpose.TX_DEFAULT, [(0, 10)], connector_id=2)
    installed = [cp_max, a, b]
    connectors = tuple(Profiles.select(installed, c) for c in (1, 2))
    whole = Profiles(0, charge_point_max=(cp_max,), connectors=connectors)
    assert steps(whole, end=T0 + 200) == [(0, 26), (100, 40)]


def test_ceiling_fills_unlimited_stretches_and_caps_limits() -> None:
    short = profile(1, Purpose.TX_DEFAULT, [(0, 6), (50, 40)], duration=100)
    found = composite(Profiles.select([short], 1), T0, T0 + 200, SUPPLY, ceiling=32)
    assert [(p.start, p.limit, p.source) for p in found] == [
        (0, 6, Purpose.TX_DEFAULT),
        (50, 32, None),
    ]


def test_valid_to_ends_a_profile() -> None:
    ending = profile(1, Purpose.TX_DEFAULT, [(0, 6)], valid_to=T0 + 30)
    profiles = Profiles.select([ending], 1)
    assert steps(profiles, end=T0 + 60) == [(0, 6), (30, None)]
    assert next_change(profiles, T0, SUPPLY) == T0 + 30


def test_profile_round_trips_through_its_payload() -> None:
    payload = {
        "charging_profile_id": 7,
        "stack_level": 2,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Recurring",
        "recurrency_kind": "Daily",
        "valid_from": "2026-03-01T00:00:00Z",
        "valid_to": "2026-04-01T00:00:00.000Z",
        "charging_schedule": {
            "charging_rate_unit": "W",
            "start_schedule": "2026-03-01T22:00:00Z",
            "duration": 28800,
            "min_charging_rate": 1380.0,
            "charging_schedule_period": [
                {"start_period": 0, "limit": 7360.0, "number_phases": 1},
                {"start_period": 3600, "limit": 11040.0},
            ],
        },
    }
    parsed = profile_from_ocpp(1, payload)
    assert parsed.valid_to == instant_of("2026-04-01T00:00:00Z")
    assert profile_from_ocpp(1, profile_to_ocpp(parsed)) == parsed


def test_absolute_without_start_schedule_starts_at_valid_from_or_installation() -> None:
    payload: dict[str, Any] = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 6}],
        },
    }
    assert profile_from_ocpp(1, payload, installed_at=T0).start_schedule == T0
    payload["valid_from"] = "2026-03-02T11:00:00Z"
    assert profile_from_ocpp(1, payload, installed_at=T0).start_schedule == T0 + 3600


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"charging_schedule_period": []}, "no period"),
        ({"charging_schedule_period": [{"start_period": 5, "limit": 6}]}, "start at 0"),
        (
            {
                "charging_schedule_period": [
                    {"start_period": 0, "limit": 6},
                    {"start_period": 0, "limit": 8},
                ]
            },
            "increasing",
        ),
        ({"charging_schedule_period": [{"start_period": 0, "limit": -1}]}, "negative"),
        ({"duration": 0}, "duration"),
    ],
)
def test_profiles_that_cannot_be_followed_are_refused(change: dict[str, Any], reason: str) -> None:
    schedule = {
        "charging_rate_unit": "A",
        "charging_schedule_period": [{"start_period": 0, "limit": 6}],
    }
    payload = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": schedule | change,
    }
    with pytest.raises(ProfileError, match=reason):
        profile_from_ocpp(1, payload, installed_at=T0)


# -- the property: the composite agrees with evaluating every second ------------------------------

WINDOW = 240


def reference_limit(
    installed: list[ChargingProfile], t: int, tx_start: int | None, supply: Supply
) -> float | None:
    """Deliberately simple: every rule spelt out again, one instant at a time."""

    def period(p: ChargingProfile) -> Period | None:
        if p.valid_from is not None and t < p.valid_from:
            return None
        if p.valid_to is not None and t >= p.valid_to:
            return None
        if p.kind is Kind.RELATIVE:
            anchor = tx_start
        elif p.kind is Kind.RECURRING:
            assert p.start_schedule is not None
            anchor = p.start_schedule
            while anchor > t:
                anchor -= DAY
            while anchor + DAY <= t:
                anchor += DAY
        else:
            anchor = p.start_schedule
        if anchor is None or t < anchor:
            return None
        offset = t - anchor
        if p.duration is not None and offset >= p.duration:
            return None
        found = None
        for each in p.periods:
            if each.start <= offset:
                found = each
        return found

    def amps(p: ChargingProfile, each: Period) -> float:
        if p.unit is RateUnit.AMPS:
            return each.limit
        return each.limit / (supply.voltage * (each.number_phases or supply.phases))

    def leading(purpose: Purpose, connectors: tuple[int, ...]) -> float | None:
        best: tuple[tuple[bool, int], float] | None = None
        for p in installed:
            if p.purpose is not purpose or p.connector_id not in connectors:
                continue
            if purpose is Purpose.TX and tx_start is None:
                continue
            each = period(p)
            if each is None:
                continue
            rank = (p.connector_id != 0, p.stack_level)
            if best is None or rank > best[0]:
                best = (rank, amps(p, each))
        return None if best is None else best[1]

    top = leading(Purpose.CHARGE_POINT_MAX, (0,))
    tx = leading(Purpose.TX, (1,))
    if tx is None:
        tx = leading(Purpose.TX_DEFAULT, (0, 1))
    terms = [x for x in (top, tx) if x is not None]
    return min(terms) if terms else None


@st.composite
def stacks(draw: st.DrawFn) -> tuple[list[ChargingProfile], int | None]:
    count = draw(st.integers(1, 5))
    used_ranks: set[tuple[Purpose, int, int]] = set()
    installed = []
    for id in range(1, count + 1):
        purpose = draw(st.sampled_from(list(Purpose)))
        connector = 0 if purpose is Purpose.CHARGE_POINT_MAX else draw(st.sampled_from([0, 1]))
        if purpose is Purpose.TX:
            connector = 1
        level = draw(st.integers(0, 3))
        if (purpose, connector, level) in used_ranks:
            continue  # the station replaces one of the same purpose and stack level
        used_ranks.add((purpose, connector, level))
        kind = draw(st.sampled_from(list(Kind)))
        starts = sorted(draw(st.sets(st.integers(1, 200), max_size=4)))
        unit = draw(st.sampled_from(list(RateUnit)))
        limits = st.integers(0, 40) if unit is RateUnit.AMPS else st.integers(0, 30000)
        periods = tuple(
            Period(s, float(draw(limits)), draw(st.sampled_from([None, 1, 3])))
            for s in [0, *starts]
        )
        near = st.integers(T0 - 100, T0 + WINDOW + 100)
        start_schedule = None
        if kind is Kind.ABSOLUTE:
            start_schedule = draw(near)
        elif kind is Kind.RECURRING:
            start_schedule = draw(near) - DAY * draw(st.integers(-1, 2))
        valid_from = draw(st.none() | near)
        valid_to = draw(st.none() | near)
        if valid_from is not None and valid_to is not None and valid_to <= valid_from:
            valid_to = valid_from + 1
        installed.append(
            ChargingProfile(
                id=id, stack_level=level, purpose=purpose, kind=kind, unit=unit,
                periods=periods, connector_id=connector, transaction_id=None,
                recurrency=Recurrency.DAILY if kind is Kind.RECURRING else None,
                valid_from=valid_from, valid_to=valid_to, start_schedule=start_schedule,
                duration=draw(st.none() | st.integers(1, 300)),
            )
        )  # fmt: skip
    tx_start = draw(st.none() | st.integers(T0 - 200, T0 + WINDOW))
    return installed, tx_start


@settings(max_examples=150, deadline=None)
@given(stacks())
def test_composite_agrees_with_the_second_by_second_reference(
    case: tuple[list[ChargingProfile], int | None],
) -> None:
    installed, tx_start = case
    profiles = Profiles.select(
        installed,
        1,
        transaction_id=None if tx_start is None else 1,
        relative_start=tx_start,
    )
    periods = composite(profiles, T0, T0 + WINDOW, SUPPLY)
    assert periods[0].start == 0
    for t in range(T0, T0 + WINDOW):
        expected = reference_limit(installed, t, tx_start, SUPPLY)
        current = [p for p in periods if p.start <= t - T0][-1]
        if expected is None:
            assert current.limit is None, t - T0
        else:
            assert current.limit == pytest.approx(int(expected * 10 + 1e-6) / 10), t - T0
    # Nothing changes before the next change, and it comes no later than the reference's first.
    first = reference_limit(installed, T0, tx_start, SUPPLY)
    change = next_change(profiles, T0, SUPPLY, horizon=WINDOW)
    differs = [
        t
        for t in range(T0 + 1, T0 + WINDOW)
        if reference_limit(installed, t, tx_start, SUPPLY) != first
    ]
    if differs:
        assert change is not None
        assert change <= differs[0]
    if change is not None:
        assert all(
            reference_limit(installed, t, tx_start, SUPPLY) == first for t in range(T0, change)
        )
