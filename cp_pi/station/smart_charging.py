"""Smart Charging (OCPP 1.6 sections 3.13, 5.5, 5.7, 5.16): the profiles the central system
installs, the composite schedule it asks for, and the limit each connector follows.

The profiles live in the store (they survive a restart and a power cut) and in memory; the
arithmetic is :mod:`cp_pi.core.schedule`'s. The limit is not polled: after every change (a
profile installed or cleared, a transaction started or ended) the limit now and the instant of
the next change are computed, and one loop timer wakes the charge point at that instant. Each
new limit is handed to ``on_limit`` (the connector offers it on the control pilot).

Answers, as the specification and its compliance cases want them:

* SetChargingProfile: ``Rejected`` (with the reason in the log) for an unknown connector, a
  ChargePointMaxProfile on a connector other than 0, a TxProfile on connector 0 or without a
  running transaction or naming another transaction (TC_058), a stack level, a number of periods
  or of installed profiles beyond the configuration keys, a profile already past its validTo, or
  one that cannot be followed (periods not starting at 0 or not increasing). A profile with the
  same id, or with the same purpose, stack level and connector, is replaced.
* ClearChargingProfile: by id, or by any of connector, purpose and stack level; ``Unknown`` when
  nothing matched (TC_067).
* GetCompositeSchedule: connector 0 or a connector, from now for ``duration`` seconds (at most
  31 days, said in the answer's duration), in A unless W is asked; where no profile limits, what
  the connector offers without one (cable, ``max_current``) is reported.
* RemoteStartTransaction's ``chargingProfile`` must be a TxProfile (TC_060, else ``Rejected``):
  it is installed for the transaction that the start begins (TC_059).
* TxProfiles end with their transaction; a profile past its validTo is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    ChargingProfileStatus,
    ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
)
from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.routing import on
from cp_pi.core.schedule import (
    ChargingProfile,
    Limit,
    ProfileError,
    Profiles,
    Purpose,
    RateUnit,
    Supply,
    composite,
    date_time,
    instant_of,
    next_change,
    profile_from_ocpp,
    profile_to_ocpp,
)
from cp_pi.station.clock import Cancellable, Clock
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector, Transaction
from cp_pi.store import Store

log = logging.getLogger("cp_pi.smart_charging")

#: The longest composite schedule worked out (31 days): an answer for years of daily periods
#: would hold the event loop and the link for seconds; the answer's duration says what it covers.
COMPOSITE_WINDOW_MAX = 31 * 86_400

#: Stands for a running transaction whose id the central system has not given yet (a profile
#: installed meanwhile has no transactionId, and matches any).
_PROVISIONAL = -1

#: Told each connector's new limit (None: no profile limits it).
LimitListener = Callable[[Connector, Limit | None], object]


@dataclass
class _Pending:
    """A RemoteStartTransaction's TxProfile, waiting for the transaction it starts (until the
    start is given up: no cable within ConnectionTimeOut, and a minute for the authorization)."""

    id_tag: str
    profile: ChargingProfile
    until: int


class SmartCharging:
    def __init__(
        self,
        *,
        store: Store,
        configuration: ConfigurationKeys,
        connectors: Mapping[int, Connector],
        clock: Clock,
        supply: Supply,
        on_limit: LimitListener,
        #: What the connector offers where no profile limits it (cable and installation).
        ceiling: Callable[[Connector], float],
    ) -> None:
        self._store = store
        self._configuration = configuration
        self._connectors = connectors
        self._clock = clock
        self._supply = supply
        self._on_limit = on_limit
        self._ceiling = ceiling
        self._profiles: dict[int, ChargingProfile] = {}
        self._pending: dict[int, _Pending] = {}
        #: The transaction each connector ran when last looked at (TxProfiles end with it).
        self._seen: dict[int, object] = {}
        #: The limit each connector was last given.
        self.limits: dict[int, Limit | None] = {}
        #: When each connector's limit changes next (seconds since the epoch), None: never.
        self.next_changes: dict[int, int | None] = {}
        self._timer: Cancellable | None = None
        self._following = False
        self._again = False
        self._load()

    def _load(self) -> None:
        """The profiles installed before the restart; TxProfiles have none left to belong to
        (a transaction open at a restart is ended with PowerLoss)."""
        gone: list[int] = []
        for connector_id, payload in self._store.charging_profiles():
            try:
                profile = profile_from_ocpp(connector_id, payload)
            except (ProfileError, KeyError, ValueError) as error:
                log.warning("ignoring a stored charging profile that cannot be read: %s", error)
                continue
            if profile.purpose is Purpose.TX:
                gone.append(profile.id)
            else:
                self._profiles[profile.id] = profile
        if gone:
            self._store.replace_charging_profiles(gone, [])
            log.info("TxProfiles %s ended with their transactions", gone)

    @property
    def installed(self) -> list[ChargingProfile]:
        return list(self._profiles.values())

    # -- SetChargingProfile --------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        try:
            profile = self._checked(connector_id, cs_charging_profiles)
        except ProfileError as error:
            log.warning("SetChargingProfile on connector %d: Rejected: %s", connector_id, error)
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        self.install(profile)
        log.info(
            "charging profile %d installed: %s, stack level %d, connector %d",
            profile.id,
            profile.purpose.value,
            profile.stack_level,
            connector_id,
        )
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    def _checked(self, connector_id: int, fields: Mapping[str, Any]) -> ChargingProfile:
        """The profile to install, or :class:`ProfileError` saying why not."""
        if connector_id != 0 and connector_id not in self._connectors:
            raise ProfileError(f"there is no connector {connector_id}")
        try:
            profile = profile_from_ocpp(connector_id, fields, installed_at=self._now())
        except (KeyError, ValueError) as error:
            raise ProfileError(str(error)) from None
        if profile.purpose is Purpose.CHARGE_POINT_MAX and connector_id != 0:
            raise ProfileError("a ChargePointMaxProfile is set on connector 0 only")
        if profile.purpose is Purpose.TX:
            profile = self._for_running_transaction(connector_id, profile)
        elif profile.transaction_id is not None:
            profile = replace(profile, transaction_id=None)  # only a TxProfile has one
        self._check_bounds(profile)
        if profile.valid_to is not None and profile.valid_to <= self._now():
            raise ProfileError("its validTo has passed")
        return profile

    def _for_running_transaction(
        self, connector_id: int, profile: ChargingProfile
    ) -> ChargingProfile:
        connector = self._connectors.get(connector_id)
        tx = None if connector is None else connector.transaction
        if tx is None:
            raise ProfileError("a TxProfile needs a transaction running on its connector")
        if profile.transaction_id is not None and profile.transaction_id != tx.transaction_id:
            raise ProfileError(
                f"transaction {profile.transaction_id} is not the one running ({tx.name})"
            )
        return replace(profile, transaction_id=tx.transaction_id)

    def _check_bounds(self, profile: ChargingProfile) -> None:
        max_level = self._configuration.get_int(K.charge_profile_max_stack_level)
        if profile.stack_level > max_level:
            raise ProfileError(
                f"stack level {profile.stack_level} is above ChargeProfileMaxStackLevel {max_level}"
            )
        max_periods = self._configuration.get_int(K.charging_schedule_max_periods)
        if len(profile.periods) > max_periods:
            raise ProfileError(
                f"{len(profile.periods)} periods, ChargingScheduleMaxPeriods is {max_periods}"
            )
        max_installed = self._configuration.get_int(K.max_charging_profiles_installed)
        remaining = [p for p in self._profiles.values() if not _replaced_by(p, profile)]
        if len(remaining) + 1 > max_installed:
            raise ProfileError(
                f"{max_installed} profiles are installed already (MaxChargingProfilesInstalled)"
            )

    def install(self, profile: ChargingProfile) -> None:
        """Store ``profile`` in place of any it replaces, then follow the new limits."""
        replaced = [p.id for p in self._profiles.values() if _replaced_by(p, profile)]
        self._store.replace_charging_profiles(
            replaced, [(profile.id, profile.connector_id, profile_to_ocpp(profile))]
        )
        for id in replaced:
            del self._profiles[id]
        self._profiles[profile.id] = profile
        self.follow()

    # -- ClearChargingProfile ------------------------------------------------------------------

    @on(Action.clear_charging_profile)
    def clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        if id is not None:
            matches = [p for p in self._profiles.values() if p.id == id]
        else:
            matches = [
                p
                for p in self._profiles.values()
                if (connector_id is None or p.connector_id == connector_id)
                and (charging_profile_purpose is None or p.purpose == charging_profile_purpose)
                and (stack_level is None or p.stack_level == stack_level)
            ]
        if not matches:
            return call_result.ClearChargingProfile(status=ClearChargingProfileStatus.unknown)
        self.remove([p.id for p in matches], "cleared")
        return call_result.ClearChargingProfile(status=ClearChargingProfileStatus.accepted)

    def remove(self, ids: list[int], why: str) -> None:
        self._store.replace_charging_profiles(ids, [])
        for id in ids:
            self._profiles.pop(id, None)
        log.info("charging profiles %s %s", ids, why)
        self.follow()

    # -- GetCompositeSchedule ------------------------------------------------------------------

    @on(Action.get_composite_schedule)
    def get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        if (connector_id != 0 and connector_id not in self._connectors) or duration <= 0:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        unit = RateUnit(charging_rate_unit or RateUnit.AMPS)
        start = self._now()
        if duration > COMPOSITE_WINDOW_MAX:
            log.info(
                "GetCompositeSchedule for %d s: the schedule of the next %d s is reported",
                duration,
                COMPOSITE_WINDOW_MAX,
            )
            duration = COMPOSITE_WINDOW_MAX
        schedule = self.composite(connector_id, start, duration, unit)
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=date_time(start),
            charging_schedule={
                "duration": duration,
                "start_schedule": date_time(start),
                "charging_rate_unit": unit.value,
                "charging_schedule_period": schedule,
            },
        )

    def composite(
        self, connector_id: int, start: int, duration: int, unit: RateUnit
    ) -> list[dict[str, Any]]:
        """The composite schedule's periods as OCPP payload items (snake_case)."""
        if connector_id == 0:
            each = tuple(self._selection(c, start) for c in self._connectors.values())
            profiles = replace(Profiles.select(self._profiles.values(), 0), connectors=each)
            ceiling = sum(self._ceiling(c) for c in self._connectors.values())
        else:
            connector = self._connectors[connector_id]
            profiles = self._selection(connector, start)
            ceiling = self._ceiling(connector)
        periods = composite(profiles, start, start + duration, self._supply, unit, ceiling=ceiling)
        return [
            {"start_period": p.start, "limit": p.limit}
            | ({} if p.number_phases is None else {"number_phases": p.number_phases})
            for p in periods
        ]

    def _selection(self, connector: Connector, now: int | None = None) -> Profiles:
        """The profiles bearing on ``connector``; Relative ones count from its transaction's
        start, or (for a schedule asked without one) from ``now``."""
        tx = connector.transaction
        relative_start = now
        if tx is not None:
            try:
                relative_start = instant_of(tx.started_at)
            except ValueError:
                relative_start = now
        charging = sum(1 for c in self._connectors.values() if c.transaction is not None)
        return Profiles.select(
            self._profiles.values(),
            connector.id,
            transaction_id=_running_id(tx),
            relative_start=relative_start,
            sharing=charging,
        )

    # -- RemoteStartTransaction with a profile -------------------------------------------------

    def accept_remote_start_profile(
        self, connector: Connector, id_tag: str, fields: Mapping[str, Any]
    ) -> bool:
        """Whether a RemoteStartTransaction's ``chargingProfile`` can be followed; if so it is
        kept for the transaction the start begins (its transactionId, unknown yet, is ignored)."""
        try:
            profile = profile_from_ocpp(connector.id, fields, installed_at=self._now())
            if profile.purpose is not Purpose.TX:
                raise ProfileError(
                    f"a RemoteStartTransaction's profile is a TxProfile, not {profile.purpose}"
                )
            self._check_bounds(profile)
        except (ProfileError, KeyError, ValueError) as error:
            log.warning("RemoteStartTransaction on connector %d: Rejected: %s", connector.id, error)
            return False
        until = self._now() + self._configuration.get_int(K.connection_time_out) + 60
        self._pending[connector.id] = _Pending(id_tag, replace(profile, transaction_id=None), until)
        return True

    # -- following the limits ------------------------------------------------------------------

    def look_at_transactions(self) -> None:
        """Called after every change of the charge point's state: a transaction that started
        takes its RemoteStartTransaction's profile, one that ended takes its TxProfiles along."""
        changed = False
        for connector in self._connectors.values():
            tx = connector.transaction
            if self._seen.get(connector.id) is tx:
                continue
            self._seen[connector.id] = tx
            changed = True
            if tx is None:
                ended = [
                    p.id
                    for p in self._profiles.values()
                    if p.purpose is Purpose.TX and p.connector_id == connector.id
                ]
                if ended:
                    self._store.replace_charging_profiles(ended, [])
                    for id in ended:
                        del self._profiles[id]
                    log.info("TxProfiles %s ended with their transaction", ended)
            else:
                pending = self._pending.pop(connector.id, None)
                if (
                    pending is not None
                    and pending.id_tag == tx.id_tag
                    and pending.until >= self._now()
                ):
                    profile = pending.profile
                    self._store.replace_charging_profiles(
                        [p.id for p in self._profiles.values() if _replaced_by(p, profile)],
                        [(profile.id, profile.connector_id, profile_to_ocpp(profile))],
                    )
                    self._profiles = {
                        id: p for id, p in self._profiles.items() if not _replaced_by(p, profile)
                    }
                    self._profiles[profile.id] = profile
                    log.info("charging profile %d follows %s", profile.id, tx.name)
        if changed:
            self.follow()

    def follow(self) -> None:
        """Give each connector its limit now, and wake up at the next change.

        Giving a limit refreshes the charge point, which may look here again: that look is
        done once this one is over, so that one timer is ever set."""
        if self._following:
            self._again = True
            return
        self._following = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._follow()
        finally:
            self._following = False

    def _follow(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._now()
        expired = [
            p.id for p in self._profiles.values() if p.valid_to is not None and p.valid_to <= now
        ]
        if expired:
            self._store.replace_charging_profiles(expired, [])
            for id in expired:
                del self._profiles[id]
            log.info("charging profiles %s removed: past their validTo", expired)
        wake: int | None = None
        for connector in self._connectors.values():
            profiles = self._selection(connector)
            limit = profiles.limit_at(now, self._supply)
            if connector.id not in self.limits or self.limits[connector.id] != limit:
                self.limits[connector.id] = limit
                log.info(
                    "connector %d: charging limit %s",
                    connector.id,
                    "none" if limit is None else f"{limit.amps:.1f} A ({limit.source.value})",
                )
                self._on_limit(connector, limit)
            change = next_change(profiles, now, self._supply)
            self.next_changes[connector.id] = change
            if change is not None and (wake is None or change < wake):
                wake = change
        # A profile hidden by another still ends on time (and leaves the store).
        ends = [p.valid_to for p in self._profiles.values() if p.valid_to is not None]
        if ends and (wake is None or min(ends) < wake):
            wake = min(ends)
        if wake is not None:
            timer = self._clock.timer
            delay = wake - self._clock.now().timestamp()
            self._timer = timer.call_at(timer.time() + max(0.0, delay), self.follow)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _now(self) -> int:
        return int(self._clock.now().timestamp())


def _running_id(tx: Transaction | None) -> int | None:
    if tx is None:
        return None
    return _PROVISIONAL if tx.transaction_id is None else tx.transaction_id


def _replaced_by(old: ChargingProfile, new: ChargingProfile) -> bool:
    """Section 5.16: the same id, or the same purpose and stack level (on the same connector)."""
    return old.id == new.id or (
        old.purpose is new.purpose
        and old.stack_level == new.stack_level
        and old.connector_id == new.connector_id
    )
