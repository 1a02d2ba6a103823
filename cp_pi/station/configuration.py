"""The OCPP 1.6 configuration keys (section 9.1): what GetConfiguration reports and
ChangeConfiguration may change.

A key that is reported is a promise that the charge point honours it, so only the Core keys
this charge point acts on are here, and the four measurand lists take only what the meters
measure (section 3.16.4: Rejected for a measurand the charge point does not support). The
optional BlinkRepeat, LightIntensity (no light to blink), MaxEnergyOnInvalidId and
MinimumStatusDuration are left out: the specification lets a charge point answer NotSupported for
a key it does not have.

Accepted changes are persisted in the store (namespace ``ocpp``) so that a central system's
settings survive a restart; read-only keys are computed from the hardware on every start.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.config import valid_authorization_key
from cp_pi.core.metering import ENERGY_REGISTER
from cp_pi.store import Store

log = logging.getLogger(__name__)

NAMESPACE = "ocpp"

#: Longest list accepted for each of the four measurand keys.
MEASURANDS_MAX_LENGTH = 10
#: OCPP 1.6 defines six feature profiles; a list of them can be no longer.
PROFILES_MAX_LENGTH = 6
SUPPORTED_FEATURE_PROFILES = ",".join(
    (
        "Core",
        "RemoteTrigger",
        "LocalAuthListManagement",
        "Reservation",
        "FirmwareManagement",
        "SmartCharging",
    )
)

#: Smart Charging bounds: a day of half-hour periods, a few profiles per purpose and connector.
CHARGE_PROFILE_MAX_STACK_LEVEL = 8
CHARGING_SCHEDULE_MAX_PERIODS = 48
MAX_CHARGING_PROFILES_INSTALLED = 16

_PHASE_ROTATIONS = frozenset({"NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR"})
_PHASE_ROTATION_ITEM = re.compile(r"([0-9]+)\.([A-Za-z]+)")
_INTEGER = re.compile(r"[0-9]+")
# OCPP integers are 32-bit signed; a larger value would overflow whoever reads it back.
_INTEGER_MAX = 2**31 - 1


class ChangeResult(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


@dataclass(frozen=True)
class KeyValue:
    key: str
    readonly: bool
    value: str | None


class _Kind(Enum):
    INTEGER = "integer"
    BOOLEAN = "boolean"
    MEASURANDS = "measurand list"
    PHASE_ROTATION = "phase rotation list"
    PROFILES = "feature profile list"
    #: Write-only: GetConfiguration never shows it (the AuthorizationKey).
    SECRET = "secret"
    #: ChargingScheduleAllowedChargingRateUnit's list (read-only).
    RATE_UNITS = "rate unit list"


_LISTS = frozenset({_Kind.MEASURANDS, _Kind.PHASE_ROTATION, _Kind.PROFILES})


@dataclass(frozen=True)
class _Key:
    kind: _Kind
    readonly: bool
    default: str


def _keys(
    number_of_connectors: int, has_lock: bool, measurands: Collection[str]
) -> dict[str, _Key]:
    """The key table, in the order of section 9.1, with this charge point's defaults."""
    n = number_of_connectors

    def rw(kind: _Kind, default: str) -> _Key:
        return _Key(kind, readonly=False, default=default)

    def ro(kind: _Kind, default: str) -> _Key:
        return _Key(kind, readonly=True, default=default)

    integer, boolean, measurand_list = _Kind.INTEGER, _Kind.BOOLEAN, _Kind.MEASURANDS
    sampled_default = ENERGY_REGISTER if ENERGY_REGISTER in measurands else ""
    max_length = ro(integer, str(MEASURANDS_MAX_LENGTH))
    rotation = ",".join(f"{connector}.Unknown" for connector in range(n + 1))
    table = {
        K.allow_offline_tx_for_unknown_id: rw(boolean, "false"),
        K.authorization_cache_enabled: rw(boolean, "true"),
        # Read-only or not is the implementation's choice (9.1.3); letting the central
        # system decide costs nothing.
        K.authorize_remote_tx_requests: rw(boolean, "false"),
        K.clock_aligned_data_interval: rw(integer, "0"),
        K.connection_time_out: rw(integer, "60"),
        K.connector_phase_rotation: rw(_Kind.PHASE_ROTATION, rotation),
        # One entry per connector plus connector 0 (the charge point's grid connection).
        K.connector_phase_rotation_max_length: ro(integer, str(n + 1)),
        K.get_configuration_max_keys: ro(integer, "50"),
        K.heartbeat_interval: rw(integer, "300"),
        K.local_authorize_offline: rw(boolean, "true"),
        K.local_pre_authorize: rw(boolean, "false"),
        K.meter_values_aligned_data: rw(measurand_list, ""),
        K.meter_values_aligned_data_max_length: max_length,
        K.meter_values_sampled_data: rw(measurand_list, sampled_default),
        K.meter_values_sampled_data_max_length: max_length,
        K.meter_value_sample_interval: rw(integer, "60"),
        K.number_of_connectors: ro(integer, str(n)),
        K.reset_retries: rw(integer, "1"),
        K.stop_transaction_on_ev_side_disconnect: rw(boolean, "true"),
        K.stop_transaction_on_invalid_id: rw(boolean, "true"),
        K.stop_txn_aligned_data: rw(measurand_list, ""),
        K.stop_txn_aligned_data_max_length: max_length,
        K.stop_txn_sampled_data: rw(measurand_list, ""),
        K.stop_txn_sampled_data_max_length: max_length,
        K.supported_feature_profiles: ro(_Kind.PROFILES, SUPPORTED_FEATURE_PROFILES),
        K.supported_feature_profiles_max_length: ro(integer, str(PROFILES_MAX_LENGTH)),
        K.transaction_message_attempts: rw(integer, "3"),
        K.transaction_message_retry_interval: rw(integer, "60"),
        # Without a lock there is nothing to unlock: reporting "true" would be a false promise.
        K.unlock_connector_on_ev_side_disconnect: (
            rw(boolean, "true") if has_lock else ro(boolean, "false")
        ),
        K.web_socket_ping_interval: rw(integer, "60"),
        # Local Auth List Management (9.2) and Reservation (9.4) profiles.
        K.local_auth_list_enabled: rw(boolean, "true"),
        K.local_auth_list_max_length: ro(integer, "10000"),
        K.send_local_list_max_length: ro(integer, "100"),
        K.reserve_connector_zero_supported: ro(boolean, "true"),
        # Security Whitepaper: the Basic auth password; never reported, never logged.
        K.authorization_key: rw(_Kind.SECRET, ""),
        # Smart Charging (section 9.4): the bounds this charge point keeps to, so read-only.
        K.charge_profile_max_stack_level: ro(integer, str(CHARGE_PROFILE_MAX_STACK_LEVEL)),
        K.charging_schedule_allowed_charging_rate_unit: ro(_Kind.RATE_UNITS, "Current,Power"),
        K.charging_schedule_max_periods: ro(integer, str(CHARGING_SCHEDULE_MAX_PERIODS)),
        # One contactor switches all phases together: no switching to one phase mid-charge.
        K.connector_switch_3to1_phase_supported: ro(boolean, "false"),
        K.max_charging_profiles_installed: ro(integer, str(MAX_CHARGING_PROFILES_INSTALLED)),
    }
    # Plain str names, as they arrive in requests and come back from the store.
    return {str(name): key for name, key in table.items()}


class ConfigurationKeys:
    def __init__(
        self,
        store: Store,
        *,
        number_of_connectors: int,
        has_lock: bool,
        measurands: Collection[str],
        authorization_key: str | None = None,
    ) -> None:
        """Start from the defaults and apply what the central system set in earlier runs.

        ``measurands`` are those every connector's meter measures: the only ones the measurand
        lists accept.

        A persisted value that is no longer valid (the key became read-only, a list limit
        shrank) is dropped with a warning rather than trusted.
        """
        self._store = store
        self._measurands = frozenset(measurands)
        self._keys = _keys(number_of_connectors, has_lock, self._measurands)
        self._values = {name: key.default for name, key in self._keys.items()}
        if authorization_key:
            self._values[K.authorization_key] = authorization_key
        self._listeners: list[Callable[[str, str], None]] = []
        for name, value in store.settings(NAMESPACE).items():
            key = self._keys.get(name)
            normalised = None if key is None or key.readonly else self._normalise(name, value)
            if normalised is None:
                shown = "(hidden)" if key is not None and key.kind is _Kind.SECRET else repr(value)
                log.warning("ignoring stored configuration %s=%s", name, shown)
            else:
                self._values[name] = normalised

    def get(self, keys: Sequence[str] | None = None) -> tuple[list[KeyValue], list[str]]:
        """GetConfiguration: (values of the known keys, names of the unknown ones).

        No keys asked means every key, as the specification says.
        """
        names = (
            list(keys) if keys else [n for n, k in self._keys.items() if k.kind is not _Kind.SECRET]
        )
        known = [
            KeyValue(
                name,
                self._keys[name].readonly,
                None if self._keys[name].kind is _Kind.SECRET else self._values[name],
            )
            for name in names
            if name in self._keys
        ]
        unknown = [name for name in names if name not in self._keys]
        return known, unknown

    def change(self, key: str, value: str) -> ChangeResult:
        """ChangeConfiguration: validate, normalise, persist, then tell the listeners."""
        spec = self._keys.get(key)
        if spec is None:
            return ChangeResult.NOT_SUPPORTED
        if spec.readonly:
            return ChangeResult.REJECTED
        normalised = self._normalise(key, value)
        if normalised is None:
            return ChangeResult.REJECTED
        self._store.put_setting(NAMESPACE, key, normalised)
        self._values[key] = normalised
        for listener in self._listeners:
            listener(key, normalised)
        return ChangeResult.ACCEPTED

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Be told (key, new value) after each accepted change, e.g. to restart a timer."""
        self._listeners.append(listener)

    # The typed getters take a ConfigurationKey member, so that a misspelt key fails the type
    # check rather than a charging session.
    def get_int(self, key: K) -> int:
        return int(self._typed(key, _Kind.INTEGER))

    def get_bool(self, key: K) -> bool:
        return self._typed(key, _Kind.BOOLEAN) == "true"

    def authorization_key(self) -> str | None:
        """The Basic auth password, as last set by the central system or the configuration."""
        return self._values[K.authorization_key] or None

    def get_list(self, key: K) -> list[str]:
        value = self._typed(key, *_LISTS)
        return value.split(",") if value else []

    def _typed(self, key: str, *kinds: _Kind) -> str:
        """The value of a known key, if it has one of ``kinds`` (a caller's typo fails loudly)."""
        kind = self._keys[key].kind
        if kind not in kinds:
            raise TypeError(f"{key} is a {kind.value}")
        return self._values[key]

    def _normalise(self, key: str, value: str) -> str | None:
        """The canonical form of ``value`` for ``key``, or None when the key cannot take it."""
        kind = self._keys[key].kind
        if kind is _Kind.SECRET:
            return value if valid_authorization_key(value) else None
        value = value.strip()
        if kind is _Kind.INTEGER:
            if not _INTEGER.fullmatch(value) or int(value) > _INTEGER_MAX:
                return None
            return str(int(value))
        if kind is _Kind.BOOLEAN:
            lowered = value.lower()
            return lowered if lowered in ("true", "false") else None
        items = [item.strip() for item in value.split(",")] if value else []
        if len(items) > self.get_int(K(key + "MaxLength")):
            return None
        if kind is _Kind.MEASURANDS:
            valid = all(item in self._measurands for item in items)
        else:  # only ConnectorPhaseRotation is writable among the other lists
            valid = self._valid_phase_rotation(items)
        return ",".join(items) if valid else None

    def _valid_phase_rotation(self, items: list[str]) -> bool:
        """Entries like ``1.RST``: a connector of this charge point (0 = the grid connection)
        and a rotation from 9.1.7, each connector at most once."""
        connectors: list[int] = []
        for item in items:
            match = _PHASE_ROTATION_ITEM.fullmatch(item)
            if match is None or match[2] not in _PHASE_ROTATIONS:
                return False
            connectors.append(int(match[1]))
        number_of_connectors = self.get_int(K.number_of_connectors)
        return len(set(connectors)) == len(connectors) and all(
            c <= number_of_connectors for c in connectors
        )
