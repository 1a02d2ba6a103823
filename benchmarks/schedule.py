"""Figure: computing a GetCompositeSchedule, 10 installed profiles of 24 periods over 7 days.

The profiles are a worst case for the charge point's arithmetic: all ten bear on the connector
(a ChargePointMaxProfile, TxDefaultProfiles on connector 0 and on the connector at several stack
levels, daily and weekly recurring, absolute and relative, and the transaction's TxProfile),
each with 24 hourly periods, so that over 7 days every hour of every profile is a possible
change. The time is the pure computation (:mod:`cp_pi.core.schedule`) the station runs for the
answer, in amps and in watts, measured in this process.
"""

from __future__ import annotations

import time

from benchmarks.common import Figure, median, ms, p99
from cp_pi.core.schedule import (
    DAY,
    WEEK,
    ChargingProfile,
    Kind,
    Period,
    Profiles,
    Purpose,
    RateUnit,
    Recurrency,
    Supply,
    composite,
    instant_of,
)

GOAL_P99 = 0.005
START = instant_of("2026-03-02T00:00:00Z")
WARM_UP = 20


def installed() -> list[ChargingProfile]:
    """Ten profiles of 24 hourly periods, every purpose, kind and recurrence represented."""
    shapes = [
        (Purpose.CHARGE_POINT_MAX, Kind.RECURRING, Recurrency.DAILY, 0, 0),
        (Purpose.TX_DEFAULT, Kind.RECURRING, Recurrency.DAILY, 0, 0),
        (Purpose.TX_DEFAULT, Kind.RECURRING, Recurrency.WEEKLY, 0, 1),
        (Purpose.TX_DEFAULT, Kind.ABSOLUTE, None, 0, 2),
        (Purpose.TX_DEFAULT, Kind.RECURRING, Recurrency.DAILY, 1, 0),
        (Purpose.TX_DEFAULT, Kind.RECURRING, Recurrency.DAILY, 1, 1),
        (Purpose.TX_DEFAULT, Kind.RELATIVE, None, 1, 2),
        (Purpose.TX_DEFAULT, Kind.ABSOLUTE, None, 1, 3),
        (Purpose.TX, Kind.RECURRING, Recurrency.DAILY, 1, 0),
        (Purpose.TX, Kind.RELATIVE, None, 1, 1),
    ]
    profiles = []
    for n, (purpose, kind, recurrency, connector, level) in enumerate(shapes):
        periods = tuple(
            Period(hour * 3600 + n * 60, float(6 + (hour * 7 + n * 3) % 26)) for hour in range(24)
        )
        periods = (Period(0, 32.0), *periods[1:])
        profiles.append(
            ChargingProfile(
                id=n + 1,
                stack_level=level,
                purpose=purpose,
                kind=kind,
                unit=RateUnit.WATTS if n % 3 == 0 else RateUnit.AMPS,
                periods=periods,
                connector_id=connector,
                transaction_id=1 if purpose is Purpose.TX else None,
                recurrency=recurrency,
                start_schedule=None if kind is Kind.RELATIVE else START + n * 900,
                duration=None if kind is Kind.RECURRING else 3 * DAY,
            )
        )
    return profiles


async def measure(count: int) -> list[Figure]:
    profiles = Profiles.select(
        installed(), 1, transaction_id=1, relative_start=START + 1800, sharing=1
    )
    supply = Supply()
    times: list[float] = []
    periods = 0
    for n in range(WARM_UP + count):
        unit = RateUnit.WATTS if n % 2 else RateUnit.AMPS
        began = time.perf_counter()
        schedule = composite(profiles, START + 60, START + 60 + WEEK, supply, unit, ceiling=32.0)
        times.append(time.perf_counter() - began)
        periods = len(schedule)
    times = times[WARM_UP:]
    goal = f"p99 <= {ms(GOAL_P99)}"
    return [
        Figure("GetCompositeSchedule, 10 profiles x 24 periods, 7 days: periods", str(periods)),
        Figure("GetCompositeSchedule, 10 profiles x 24 periods, 7 days: median", ms(median(times))),
        Figure(
            "GetCompositeSchedule, 10 profiles x 24 periods, 7 days: p99",
            ms(p99(times)),
            goal,
            p99(times) <= GOAL_P99,
        ),
    ]
