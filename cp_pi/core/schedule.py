"""Charging profiles and the composite schedule (OCPP 1.6 section 3.13): profiles in, limits out.

Pure: no clock and no I/O. Instants are whole seconds since the Unix epoch (UTC), as the caller
reads them from its clock; a window is ``[start, end)``. The rules, as this module applies them:

* **Validity.** A profile counts from ``validFrom`` (inclusive) to ``validTo`` (exclusive);
  either may be absent (no bound).
* **Kinds.** ``Absolute``: the periods count from ``startSchedule``. ``Recurring``: from
  ``startSchedule`` and again every day (``Daily``) or week (``Weekly``), before and after it.
  ``Relative``: from the start of the transaction; without one it has nothing to say (the
  station passes the request's time for a GetCompositeSchedule without a transaction, as if one
  started then). A profile without ``startSchedule`` (Absolute, Recurring) has been given one by
  the station when it was installed.
* **Periods and duration.** A period lasts until the next one starts; the last one until the
  schedule's ``duration`` ends (or, for ``Recurring``, the recurrence ends), or for good without
  a duration. Before the first period starts, after the duration, and outside validity, the
  profile has no limit at that instant.
* **Stack levels.** Within one purpose the profile with the highest stack level that has a
  limit at an instant leads; one that has nothing to say at that instant (outside its validity,
  its duration or before its first period) does not hide the levels below it. A TxDefaultProfile
  installed on the connector itself ranks above any installed on connector 0 (section 3.13.2:
  it replaces connector 0's for that connector).
* **Purposes.** The limit in force on a connector is the smaller of the ChargePointMaxProfile's
  share and the TxProfile of its transaction, or, where that has no limit, its TxDefaultProfile.
  The ChargePointMaxProfile limits the whole charge point: each connector gets an equal share
  among the connectors that charge (``sharing``, at least 1). Connector 0 (the grid connection)
  reports the ChargePointMaxProfile, or below it the sum of the connectors' limits when each of
  them has one.
* **Units.** Limits in W become A through the supply voltage and the period's ``numberPhases``
  (3 when absent, as the specification says), A back to W the same way; reported limits are
  rounded down to 0.1 (the schema's step), so a reported limit never exceeds the real one.
* **No profile, no limit:** where nothing limits, the limit is None (the station then offers
  what the cable and the installation allow).
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

DAY = 86_400
WEEK = 7 * DAY
#: Stands for "not worked out yet" where None is a limit (no limit).
_UNKNOWN: Any = object()

#: numberPhases when a period does not say (OCPP 1.6 section 7.13).
DEFAULT_PHASES = 3


class Purpose(StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(StrEnum):
    AMPS = "A"
    WATTS = "W"


class ProfileError(ValueError):
    """A profile the schema lets through but that cannot be followed (said in the log)."""


@dataclass(frozen=True, slots=True)
class Period:
    start: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    unit: RateUnit
    periods: tuple[Period, ...]
    connector_id: int = 0
    transaction_id: int | None = None
    recurrency: Recurrency | None = None
    valid_from: int | None = None
    valid_to: int | None = None
    start_schedule: int | None = None
    duration: int | None = None
    min_charging_rate: float | None = None
    _starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(p.start for p in self.periods))

    # -- one profile at one instant --------------------------------------------------------------

    def anchor(self, instant: int, relative_start: int | None) -> int | None:
        """When the schedule (this recurrence of it) started, for ``instant``."""
        if self.kind is Kind.RELATIVE:
            return relative_start
        if self.start_schedule is None:
            return None
        if self.kind is Kind.RECURRING:
            every = WEEK if self.recurrency is Recurrency.WEEKLY else DAY
            return self.start_schedule + (instant - self.start_schedule) // every * every
        return self.start_schedule

    def period_at(self, instant: int, relative_start: int | None) -> Period | None:
        """The period in force at ``instant``, or None where this profile has nothing to say."""
        if self.valid_from is not None and instant < self.valid_from:
            return None
        if self.valid_to is not None and instant >= self.valid_to:
            return None
        anchor = self.anchor(instant, relative_start)
        if anchor is None:
            return None
        offset = instant - anchor
        if offset < 0 or (self.duration is not None and offset >= self.duration):
            return None
        index = bisect.bisect_right(self._starts, offset) - 1
        return self.periods[index] if index >= 0 else None

    def changes(self, start: int, end: int, relative_start: int | None) -> Iterable[int]:
        """Every instant in ``(start, end)`` where this profile's period may change."""
        for bound in (self.valid_from, self.valid_to):
            if bound is not None:
                yield bound
        anchors: Iterable[int]
        if self.kind is Kind.RECURRING and self.start_schedule is not None:
            every = WEEK if self.recurrency is Recurrency.WEEKLY else DAY
            first = self.anchor(start, None)
            assert first is not None
            anchors = range(first, end, every)
        else:
            anchor = self.anchor(start, relative_start)
            anchors = () if anchor is None else (anchor,)
        for anchor in anchors:
            if anchor >= end:
                break
            for offset in self._starts:
                yield anchor + offset
            if self.duration is not None:
                yield anchor + self.duration

    def stretches(
        self, start: int, end: int, relative_start: int | None
    ) -> Iterator[tuple[int, int, Period]]:
        """``(from, to, period)`` for each stretch of ``[start, end)`` where a period is in
        force, in order; ``to`` may lie beyond ``end``."""
        low = start if self.valid_from is None else max(start, self.valid_from)
        high = end if self.valid_to is None else min(end, self.valid_to)
        if low >= high:
            return
        anchors: Iterable[int]
        every: int | None = None
        if self.kind is Kind.RECURRING:
            if self.start_schedule is None:
                return
            every = WEEK if self.recurrency is Recurrency.WEEKLY else DAY
            first = self.anchor(low, None)
            assert first is not None
            anchors = range(first, high, every)
        else:
            anchor = self.anchor(low, relative_start)
            anchors = () if anchor is None else (anchor,)
        starts = self._starts
        last = len(starts) - 1
        for anchor in anchors:
            stop = anchor + self.duration if self.duration is not None else None
            if every is not None:
                stop = anchor + every if stop is None else min(stop, anchor + every)
            for i, period in enumerate(self.periods):
                t0 = anchor + starts[i]
                t1 = anchor + starts[i + 1] if i < last else None
                if stop is not None:
                    if t0 >= stop:
                        break
                    if t1 is None or t1 > stop:
                        t1 = stop
                if t0 < low:
                    t0 = low
                if t1 is None or t1 > high:
                    t1 = high
                if t0 < t1:
                    yield t0, t1, period


# -- what the station asks -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Supply:
    """How W and A relate at this charge point."""

    voltage: float = 230.0
    phases: int = DEFAULT_PHASES

    def to_amps(self, limit: float, unit: RateUnit, phases: int | None) -> float:
        if unit is RateUnit.AMPS:
            return limit
        return limit / (self.voltage * (phases or self.phases))

    def from_amps(self, amps: float, unit: RateUnit, phases: int | None) -> float:
        if unit is RateUnit.AMPS:
            return amps
        return amps * self.voltage * (phases or self.phases)


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit in force: amps, the purpose that set it, and the phases its period names."""

    amps: float
    source: Purpose
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profiles:
    """The profiles that bear on one connector (or, for connector 0, on the charge point).

    ``tx_default`` holds those of connector 0 and of the connector itself; ``tx`` only those of
    the connector's running transaction. For connector 0, ``connectors`` holds each connector's
    own, to sum their limits.
    """

    connector_id: int
    charge_point_max: tuple[ChargingProfile, ...] = ()
    tx_default: tuple[ChargingProfile, ...] = ()
    tx: tuple[ChargingProfile, ...] = ()
    #: When the connector's transaction started (Relative profiles count from it).
    relative_start: int | None = None
    #: Among how many connectors the ChargePointMaxProfile is shared.
    sharing: int = 1
    connectors: tuple[Profiles, ...] = ()

    @classmethod
    def select(
        cls,
        installed: Iterable[ChargingProfile],
        connector_id: int,
        *,
        transaction_id: int | None = None,
        relative_start: int | None = None,
        sharing: int = 1,
    ) -> Profiles:
        """The installed profiles that bear on ``connector_id`` (> 0), ranked within purpose."""
        profiles = list(installed)
        return cls(
            connector_id,
            charge_point_max=_ranked(p for p in profiles if p.purpose is Purpose.CHARGE_POINT_MAX),
            tx_default=_ranked(
                p
                for p in profiles
                if p.purpose is Purpose.TX_DEFAULT and p.connector_id in (0, connector_id)
            ),
            tx=_ranked(
                p
                for p in profiles
                if p.purpose is Purpose.TX
                and p.connector_id == connector_id
                and transaction_id is not None
                and p.transaction_id in (None, transaction_id)
            ),
            relative_start=relative_start,
            sharing=max(1, sharing),
        )

    def all(self) -> Iterable[ChargingProfile]:
        yield from self.charge_point_max
        yield from self.tx_default
        yield from self.tx
        for each in self.connectors:
            yield from each.all()

    def limit_at(self, instant: int, supply: Supply) -> Limit | None:
        """The limit in force at ``instant``, or None where nothing limits."""
        rel = self.relative_start
        each: list[Limit | None] | None = None
        if self.connector_id == 0 and self.connectors:
            each = [c.limit_at(instant, supply) for c in self.connectors]
        return self._combine(
            _leading(self.charge_point_max, instant, rel),
            _leading(self.tx, instant, rel) or _leading(self.tx_default, instant, rel),
            each,
            supply,
        )

    def _combine(
        self,
        top: tuple[Period, ChargingProfile] | None,
        leading: tuple[Period, ChargingProfile] | None,
        connectors: list[Limit | None] | None,
        supply: Supply,
    ) -> Limit | None:
        """The smaller of the ChargePointMaxProfile's share and the transaction's limit (for
        connector 0, the sum of the connectors' limits)."""
        terms: list[Limit] = []
        if top is not None:
            period, profile = top
            amps = supply.to_amps(period.limit, profile.unit, period.number_phases)
            share = amps if self.connector_id == 0 else amps / self.sharing
            terms.append(Limit(share, Purpose.CHARGE_POINT_MAX, period.number_phases))
        if self.connector_id == 0:
            if connectors and all(limit is not None for limit in connectors):
                total = sum(limit.amps for limit in connectors if limit is not None)
                terms.append(Limit(total, Purpose.TX_DEFAULT))
        elif leading is not None:
            period, profile = leading
            amps = supply.to_amps(period.limit, profile.unit, period.number_phases)
            terms.append(Limit(amps, profile.purpose, period.number_phases))
        return min(terms, key=lambda term: term.amps, default=None)

    def sweep(self, start: int, end: int, supply: Supply) -> Iterator[tuple[int, Limit | None]]:
        """(instant, limit) at ``start`` and at every instant in ``(start, end)`` where the limit
        may change, in order: each profile's stretches are laid out once and swept, instead of
        evaluating every profile at every instant (GetCompositeSchedule over a week)."""
        if self.connector_id == 0 and self.connectors:
            for instant in (start, *self.changes(start, end)):
                yield instant, self.limit_at(instant, supply)
            return
        stacks = (self.charge_point_max, self.tx, self.tx_default)
        active: list[list[Period | None]] = [[None] * len(stack) for stack in stacks]
        events: list[tuple[int, int, int, int, Period | None]] = []
        for s, stack in enumerate(stacks):
            for i, profile in enumerate(stack):
                # A stretch that ends where the next begins needs no end of its own.
                ends = end
                for t0, t1, period in profile.stretches(start, end, self.relative_start):
                    if ends < t0:
                        events.append((ends, 0, s, i, None))
                    events.append((t0, 1, s, i, period))
                    ends = t1
                if ends < end:
                    events.append((ends, 0, s, i, None))
        # Ends before starts at one instant; (instant, kind, stack, index) never repeats.
        # The index of each stack's leading profile (-1: none), kept up to date event by event;
        # the same leaders in the same periods give the same limit, worked out once.
        leaders = [-1, -1, -1, -1]
        active.append([None])  # a fourth, empty stack: its one event makes ``start`` an instant
        events.append((start, -1, 3, 0, None))
        events.sort()
        known: dict[tuple[int, ...], Limit | None] = {}
        previous: Any = _UNKNOWN
        for instant, group in itertools.groupby(events, key=operator.itemgetter(0)):
            for _, _, s, i, now_in_force in group:
                row = active[s]
                row[i] = now_in_force
                lead = leaders[s]
                if now_in_force is not None:
                    if lead < 0 or i < lead:
                        leaders[s] = i
                elif i == lead:  # the leader ended: the next one down that is in force
                    leaders[s] = next((j for j in range(i + 1, len(row)) if row[j] is not None), -1)
            l0, l1, l2, _ = leaders
            p0 = active[0][l0] if l0 >= 0 else None
            p1 = active[1][l1] if l1 >= 0 else None
            p2 = active[2][l2] if l2 >= 0 else None
            key = (l0, id(p0), l1, id(p1), l2, id(p2))
            limit = known.get(key, _UNKNOWN)
            if limit is _UNKNOWN:
                top = None if p0 is None else (p0, stacks[0][l0])
                tx = None if p1 is None else (p1, stacks[1][l1])
                default = None if p2 is None else (p2, stacks[2][l2])
                limit = known[key] = self._combine(top, tx or default, None, supply)
            # The same leaders give the very same object: a new object is worth a look.
            if limit is not previous and (previous is _UNKNOWN or limit != previous):
                yield instant, limit
                previous = limit

    def changes(self, start: int, end: int) -> list[int]:
        """The instants in ``(start, end)`` where the limit may change, in order."""
        found: set[int] = set()
        for each in (self, *self.connectors):
            for profile in (*each.charge_point_max, *each.tx_default, *each.tx):
                found.update(profile.changes(start, end, each.relative_start))
        return sorted(t for t in found if start < t < end)


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start: int
    """Seconds from the window's start."""
    limit: float | None
    """In the unit asked for; None where nothing limits (and no ceiling was given)."""
    number_phases: int | None
    source: Purpose | None


def composite(
    profiles: Profiles,
    start: int,
    end: int,
    supply: Supply,
    unit: RateUnit = RateUnit.AMPS,
    *,
    ceiling: float | None = None,
) -> list[CompositePeriod]:
    """The composite schedule over ``[start, end)``: each period lasts until the next one.

    ``ceiling`` (amps) is what the connector offers where no profile limits, and caps every
    limit (an installation never offers more than it has); without it such stretches have a
    None limit.
    """
    periods: list[CompositePeriod] = []
    previous: tuple[float | None, int | None, Purpose | None] | None = None
    for instant, limit in profiles.sweep(start, end, supply):
        amps = None if limit is None else limit.amps
        phases = None if limit is None else limit.number_phases
        source = None if limit is None else limit.source
        if ceiling is not None and (amps is None or amps > ceiling):
            amps, source = ceiling, None
        value = None if amps is None else _round_down(supply.from_amps(amps, unit, phases))
        if previous == (value, phases, source):
            continue
        previous = (value, phases, source)
        periods.append(CompositePeriod(instant - start, value, phases, source))
    return periods


def next_change(
    profiles: Profiles, instant: int, supply: Supply, horizon: int = WEEK + DAY
) -> int | None:
    """The first instant after ``instant`` (within ``horizon``) where the limit differs."""
    sweep = profiles.sweep(instant, instant + horizon, supply)
    _, now = next(sweep)
    return next((t for t, limit in sweep if limit != now), None)


# -- OCPP payloads ---------------------------------------------------------------------------------


def instant_of(text: str) -> int:
    """Seconds since the epoch of an OCPP dateTime (a time without a zone is UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return math.floor(parsed.timestamp())


def date_time(instant: int) -> str:
    """An OCPP dateTime for an instant, UTC with a "Z"."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def profile_from_ocpp(
    connector_id: int, fields: Mapping[str, Any], *, installed_at: int | None = None
) -> ChargingProfile:
    """A ``csChargingProfiles`` (or RemoteStartTransaction's ``chargingProfile``) payload, its
    keys in snake_case as the session hands them over; raises :class:`ProfileError`.

    ``installed_at`` gives an Absolute or Recurring profile without ``startSchedule`` one: its
    ``validFrom`` when it has one, else the moment it is installed.
    """
    schedule = fields["charging_schedule"]
    periods = tuple(
        Period(
            int(p["start_period"]),
            float(p["limit"]),
            None if p.get("number_phases") is None else int(p["number_phases"]),
        )
        for p in schedule["charging_schedule_period"]
    )
    if not periods:
        raise ProfileError("the schedule has no period")
    starts = [p.start for p in periods]
    if starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)):
        raise ProfileError("periods must start at 0 and in increasing order")
    if any(p.limit < 0 for p in periods):
        raise ProfileError("a limit is negative")
    if any(p.number_phases is not None and p.number_phases not in (1, 2, 3) for p in periods):
        raise ProfileError("numberPhases must be 1, 2 or 3")
    kind = Kind(fields["charging_profile_kind"])
    recurrency = fields.get("recurrency_kind")
    if kind is Kind.RECURRING and recurrency is None:
        raise ProfileError("a Recurring profile needs a recurrencyKind")
    valid_from = _optional_instant(fields.get("valid_from"))
    valid_to = _optional_instant(fields.get("valid_to"))
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ProfileError("validTo is not after validFrom")
    start_schedule = _optional_instant(schedule.get("start_schedule"))
    if start_schedule is None and kind is not Kind.RELATIVE:
        start_schedule = valid_from if valid_from is not None else installed_at
    duration = schedule.get("duration")
    if duration is not None and int(duration) <= 0:
        raise ProfileError("duration must be positive")
    stack_level = int(fields["stack_level"])
    if stack_level < 0:
        raise ProfileError("stackLevel is negative")
    minimum = schedule.get("min_charging_rate")
    transaction_id = fields.get("transaction_id")
    return ChargingProfile(
        id=int(fields["charging_profile_id"]),
        stack_level=stack_level,
        purpose=Purpose(fields["charging_profile_purpose"]),
        kind=kind,
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=periods,
        connector_id=connector_id,
        transaction_id=None if transaction_id is None else int(transaction_id),
        recurrency=None if recurrency is None else Recurrency(recurrency),
        valid_from=valid_from,
        valid_to=valid_to,
        start_schedule=start_schedule,
        duration=None if duration is None else int(duration),
        min_charging_rate=None if minimum is None else float(minimum),
    )


def profile_to_ocpp(profile: ChargingProfile) -> dict[str, Any]:
    """The profile as a snake_case payload, as :func:`profile_from_ocpp` reads it (the store)."""
    schedule: dict[str, Any] = {
        "charging_rate_unit": profile.unit.value,
        "charging_schedule_period": [
            {"start_period": p.start, "limit": p.limit}
            | ({} if p.number_phases is None else {"number_phases": p.number_phases})
            for p in profile.periods
        ],
    }
    if profile.start_schedule is not None:
        schedule["start_schedule"] = date_time(profile.start_schedule)
    if profile.duration is not None:
        schedule["duration"] = profile.duration
    if profile.min_charging_rate is not None:
        schedule["min_charging_rate"] = profile.min_charging_rate
    fields: dict[str, Any] = {
        "charging_profile_id": profile.id,
        "stack_level": profile.stack_level,
        "charging_profile_purpose": profile.purpose.value,
        "charging_profile_kind": profile.kind.value,
        "charging_schedule": schedule,
    }
    optional = {
        "transaction_id": profile.transaction_id,
        "recurrency_kind": None if profile.recurrency is None else profile.recurrency.value,
        "valid_from": None if profile.valid_from is None else date_time(profile.valid_from),
        "valid_to": None if profile.valid_to is None else date_time(profile.valid_to),
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    return fields


# -- helpers ---------------------------------------------------------------------------------------


def _ranked(profiles: Iterable[ChargingProfile]) -> tuple[ChargingProfile, ...]:
    """Highest first: a connector's own before connector 0's, then by stack level."""
    return tuple(sorted(profiles, key=lambda p: (p.connector_id != 0, p.stack_level), reverse=True))


def _leading(
    ranked: Sequence[ChargingProfile], instant: int, relative_start: int | None
) -> tuple[Period, ChargingProfile] | None:
    for profile in ranked:
        period = profile.period_at(instant, relative_start)
        if period is not None:
            return period, profile
    return None


def _optional_instant(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return instant_of(text)
    except ValueError as error:
        raise ProfileError(f"{text!r} is not a date-time") from error


def _round_down(value: float) -> float:
    """To the schema's 0.1 step, never up (a small epsilon keeps 15.9 from becoming 15.8)."""
    return math.floor(value * 10 + 1e-6) / 10
