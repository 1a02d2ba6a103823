"""When clock-aligned readings fall due, and what a reading looks like on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cp_pi.core.metering import (
    ENERGY_REGISTER,
    POWER,
    TRANSACTION_DATA_SAMPLES,
    Reading,
    TransactionData,
    next_aligned_instant,
    timestamp,
)


def at(hour: int, minute: int, second: int, microsecond: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, microsecond, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "interval", "due"),
    [
        (at(10, 7, 3), 900, at(10, 15, 0)),
        (at(10, 15, 0), 900, at(10, 30, 0)),  # strictly after: an instant is read once
        (at(10, 14, 59, 999_999), 900, at(10, 15, 0)),
        (at(0, 0, 0, 500_000), 1, at(0, 0, 1)),
        (at(12, 0, 19), 20, at(12, 0, 20)),
        (at(12, 0, 41), 20, at(12, 1, 0)),
        # 7 s does not divide a day: the last period is short and midnight starts again.
        (at(23, 59, 58), 7, at(0, 0, 0, day=2)),
        (at(23, 59, 50), 7, at(23, 59, 54)),
        (at(23, 30, 0), 86_400 * 2, at(0, 0, 0, day=2)),
    ],
)
def test_the_next_aligned_instant(now: datetime, interval: int, due: datetime) -> None:
    assert next_aligned_instant(now, interval) == due


def test_alignment_is_to_midnight_utc_whatever_the_zone() -> None:
    cet = timezone(timedelta(hours=1))
    now = datetime(2026, 12, 1, 11, 7, 3, tzinfo=cet)  # 10:07:03 UTC

    assert next_aligned_instant(now, 3600) == at(11, 0, 0)


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        next_aligned_instant(at(1, 0, 0), 0)


def test_timestamps_have_milliseconds_and_a_z() -> None:
    assert timestamp(at(10, 15, 0)) == "2026-12-01T10:15:00.000Z"


def test_a_reading_as_a_sampled_value() -> None:
    assert Reading(ENERGY_REGISTER, 1234.0, "Wh").sampled_value("Sample.Clock") == {
        "value": "1234",
        "context": "Sample.Clock",
        "measurand": ENERGY_REGISTER,
        "unit": "Wh",
    }
    assert Reading(POWER, 7360.25, "W").sampled_value("Trigger")["value"] == "7360.2"


def test_transaction_data_keeps_begin_end_and_the_newest_samples() -> None:
    data = TransactionData(begin={"n": "begin"})
    for n in range(TRANSACTION_DATA_SAMPLES + 5):
        data.add({"n": n})

    entries = data.with_end({"n": "end"})

    assert len(entries) == TRANSACTION_DATA_SAMPLES + 2
    assert entries[0] == {"n": "begin"}
    assert entries[1] == {"n": 5}
    assert entries[-2] == {"n": TRANSACTION_DATA_SAMPLES + 4}
    assert entries[-1] == {"n": "end"}
