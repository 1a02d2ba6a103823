from __future__ import annotations

import pytest
from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.metering import ENERGY_REGISTER, POWER
from cp_pi.station.configuration import ChangeResult, ConfigurationKeys, KeyValue
from cp_pi.store import Store

from .conftest import Reopen

#: OCPP 1.6 section 9.1, the Core profile keys and their accessibility there (True: R only).
#: AuthorizeRemoteTxRequests may be R or RW at the implementation's choice; cp-pi makes it RW.
#: The optional BlinkRepeat, LightIntensity, MaxEnergyOnInvalidId and MinimumStatusDuration
#: are not offered.
CORE_KEYS_READONLY = {
    "AllowOfflineTxForUnknownId": False,
    "AuthorizationCacheEnabled": False,
    "AuthorizeRemoteTxRequests": False,
    "ClockAlignedDataInterval": False,
    "ConnectionTimeOut": False,
    "ConnectorPhaseRotation": False,
    "ConnectorPhaseRotationMaxLength": True,
    "GetConfigurationMaxKeys": True,
    "HeartbeatInterval": False,
    "LocalAuthorizeOffline": False,
    "LocalPreAuthorize": False,
    "MeterValuesAlignedData": False,
    "MeterValuesAlignedDataMaxLength": True,
    "MeterValuesSampledData": False,
    "MeterValuesSampledDataMaxLength": True,
    "MeterValueSampleInterval": False,
    "NumberOfConnectors": True,
    "ResetRetries": False,
    "StopTransactionOnEVSideDisconnect": False,
    "StopTransactionOnInvalidId": False,
    "StopTxnAlignedData": False,
    "StopTxnAlignedDataMaxLength": True,
    "StopTxnSampledData": False,
    "StopTxnSampledDataMaxLength": True,
    "SupportedFeatureProfiles": True,
    "SupportedFeatureProfilesMaxLength": True,
    "TransactionMessageAttempts": False,
    "TransactionMessageRetryInterval": False,
    "UnlockConnectorOnEVSideDisconnect": False,
    "WebSocketPingInterval": False,
}

#: The Local Auth List Management and Reservation profiles' keys (sections 9.2 and 9.4).
LOCAL_LIST_AND_RESERVATION_KEYS_READONLY = {
    "LocalAuthListEnabled": False,
    "LocalAuthListMaxLength": True,
    "SendLocalListMaxLength": True,
    "ReserveConnectorZeroSupported": True,
}

#: OCPP 1.6 section 9.4, the Smart Charging keys: bounds of this charge point, read-only.
SMART_CHARGING_KEYS = {
    "ChargeProfileMaxStackLevel": "8",
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "ChargingScheduleMaxPeriods": "48",
    "ConnectorSwitch3to1PhaseSupported": "false",
    "MaxChargingProfilesInstalled": "16",
}

DEFAULTS = {
    "HeartbeatInterval": "300",
    "MeterValueSampleInterval": "60",
    "ClockAlignedDataInterval": "0",
    "ConnectionTimeOut": "60",
    "ResetRetries": "1",
    "TransactionMessageAttempts": "3",
    "TransactionMessageRetryInterval": "60",
    "WebSocketPingInterval": "60",
    "MeterValuesSampledData": "Energy.Active.Import.Register",
    "StopTxnSampledData": "",
    "MeterValuesAlignedData": "",
    "StopTxnAlignedData": "",
    "AuthorizeRemoteTxRequests": "false",
    "AuthorizationCacheEnabled": "true",
    "LocalAuthorizeOffline": "true",
    "LocalPreAuthorize": "false",
    "AllowOfflineTxForUnknownId": "false",
    "StopTransactionOnEVSideDisconnect": "true",
    "StopTransactionOnInvalidId": "true",
    "UnlockConnectorOnEVSideDisconnect": "true",
    "GetConfigurationMaxKeys": "50",
    "SupportedFeatureProfiles": (
        "Core,RemoteTrigger,LocalAuthListManagement,Reservation,FirmwareManagement,SmartCharging"
    ),
}

MEASURAND_KEYS = [
    "MeterValuesSampledData",
    "MeterValuesAlignedData",
    "StopTxnSampledData",
    "StopTxnAlignedData",
]


#: What a Modbus meter measures: more than the bench rig's energy register and power.
MODBUS_METER = frozenset({ENERGY_REGISTER, POWER, "Voltage", "Current.Import"})


def keys(
    store: Store,
    *,
    connectors: int = 1,
    lock: bool = True,
    measurands: frozenset[str] = MODBUS_METER,
) -> ConfigurationKeys:
    return ConfigurationKeys(
        store, number_of_connectors=connectors, has_lock=lock, measurands=measurands
    )


def reported(configuration: ConfigurationKeys, key: str) -> KeyValue:
    (value,), unknown = configuration.get([key])
    assert unknown == []
    return value


# -- what GetConfiguration reports -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "readonly"), (CORE_KEYS_READONLY | LOCAL_LIST_AND_RESERVATION_KEYS_READONLY).items()
)
def test_every_core_key_is_reported_with_its_accessibility(
    store: Store, key: str, readonly: bool
) -> None:
    assert reported(keys(store), key).readonly is readonly


@pytest.mark.parametrize("asked", [None, []])
def test_all_keys_are_reported_when_none_are_named(store: Store, asked: list[str] | None) -> None:
    known, unknown = keys(store).get(asked)
    assert {k.key for k in known} == set(CORE_KEYS_READONLY) | set(
        LOCAL_LIST_AND_RESERVATION_KEYS_READONLY
    ) | set(SMART_CHARGING_KEYS)
    assert unknown == []


@pytest.mark.parametrize(("key", "value"), DEFAULTS.items())
def test_defaults(store: Store, key: str, value: str) -> None:
    assert reported(keys(store), key).value == value


def test_connector_count_and_phase_rotation_follow_the_hardware(store: Store) -> None:
    configuration = keys(store, connectors=2)

    assert reported(configuration, "NumberOfConnectors").value == "2"
    assert reported(configuration, "ConnectorPhaseRotation").value == (
        "0.Unknown,1.Unknown,2.Unknown"
    )
    assert configuration.get_int(K.connector_phase_rotation_max_length) >= 3


def test_unlock_on_ev_side_disconnect_is_fixed_without_a_lock(store: Store) -> None:
    configuration = keys(store, lock=False)

    assert reported(configuration, "UnlockConnectorOnEVSideDisconnect").readonly
    assert configuration.change(K.unlock_connector_on_ev_side_disconnect, "true") == "Rejected"


def test_unknown_keys_are_named_back_in_the_order_asked(store: Store) -> None:
    known, unknown = keys(store).get(["Foo", "HeartbeatInterval", "heartbeatinterval"])

    assert known == [KeyValue("HeartbeatInterval", readonly=False, value="300")]
    assert unknown == ["Foo", "heartbeatinterval"]


# -- ChangeConfiguration ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Foo", "heartbeatinterval", "BlinkRepeat"])
def test_changing_an_unknown_key_is_not_supported(store: Store, key: str) -> None:
    assert keys(store).change(key, "1") == ChangeResult.NOT_SUPPORTED


@pytest.mark.parametrize("key", [k for k, readonly in CORE_KEYS_READONLY.items() if readonly])
def test_changing_a_read_only_key_is_rejected(store: Store, key: str) -> None:
    configuration = keys(store)
    before = reported(configuration, key).value

    assert configuration.change(key, "5") == ChangeResult.REJECTED
    assert reported(configuration, key).value == before


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "0x10", "2147483648"])
def test_a_bad_integer_is_rejected(store: Store, value: str) -> None:
    configuration = keys(store)

    assert configuration.change(K.heartbeat_interval, value) == ChangeResult.REJECTED
    assert configuration.get_int(K.heartbeat_interval) == 300


@pytest.mark.parametrize("value", ["yes", "1", "", "truee"])
def test_a_bad_boolean_is_rejected(store: Store, value: str) -> None:
    configuration = keys(store)

    assert configuration.change(K.local_pre_authorize, value) == ChangeResult.REJECTED
    assert configuration.get_bool(K.local_pre_authorize) is False


@pytest.mark.parametrize("key", MEASURAND_KEYS)
@pytest.mark.parametrize(
    "value",
    [
        "Energy.Active.Import.Registr",
        "Energy.Active.Import.Register,Bogus",
        "Energy.Active.Import.Register,,Voltage",
        ",".join(["Voltage"] * 11),
    ],
)
def test_a_bad_measurand_list_is_rejected(store: Store, key: str, value: str) -> None:
    configuration = keys(store)
    before = configuration.get_list(key)

    assert configuration.change(key, value) == ChangeResult.REJECTED
    assert configuration.get_list(key) == before


@pytest.mark.parametrize("key", MEASURAND_KEYS)
def test_a_measurand_the_meter_does_not_measure_is_rejected(store: Store, key: str) -> None:
    configuration = keys(store, measurands=frozenset({ENERGY_REGISTER, POWER}))

    assert configuration.change(key, f"{ENERGY_REGISTER},Voltage") == ChangeResult.REJECTED
    assert configuration.change(key, f"{POWER},{ENERGY_REGISTER}") == ChangeResult.ACCEPTED
    assert configuration.get_list(key) == [POWER, ENERGY_REGISTER]


def test_a_stored_measurand_a_new_meter_does_not_measure_is_dropped(store: Store) -> None:
    keys(store).change(K.meter_values_sampled_data, f"{ENERGY_REGISTER},Voltage")

    with_energy_only = keys(store, measurands=frozenset({ENERGY_REGISTER}))

    assert with_energy_only.get_list(K.meter_values_sampled_data) == [ENERGY_REGISTER]


@pytest.mark.parametrize("value", ["1.XYZ", "2.RST", "0.RST,0.RTS", "1-RST"])
def test_a_bad_phase_rotation_is_rejected(store: Store, value: str) -> None:
    assert keys(store).change(K.connector_phase_rotation, value) == ChangeResult.REJECTED


def test_accepted_values_are_normalised(store: Store) -> None:
    configuration = keys(store)

    assert configuration.change(K.local_pre_authorize, "TRUE") == ChangeResult.ACCEPTED
    assert configuration.change(K.heartbeat_interval, " 0060 ") == ChangeResult.ACCEPTED
    assert (
        configuration.change(K.meter_values_sampled_data, "Energy.Active.Import.Register, Voltage")
        == ChangeResult.ACCEPTED
    )
    assert configuration.change(K.connector_phase_rotation, "0.RST, 1.RTS") == "Accepted"

    assert reported(configuration, "LocalPreAuthorize").value == "true"
    assert configuration.get_bool(K.local_pre_authorize) is True
    assert configuration.get_int(K.heartbeat_interval) == 60
    assert reported(configuration, "MeterValuesSampledData").value == (
        "Energy.Active.Import.Register,Voltage"
    )
    assert configuration.get_list(K.connector_phase_rotation) == ["0.RST", "1.RTS"]


def test_a_measurand_list_can_be_emptied(store: Store) -> None:
    configuration = keys(store)

    assert configuration.change(K.meter_values_sampled_data, "") == ChangeResult.ACCEPTED
    assert configuration.get_list(K.meter_values_sampled_data) == []


def test_changes_survive_a_restart(store: Store, reopen: Reopen) -> None:
    configuration = keys(store)
    configuration.change(K.heartbeat_interval, "120")
    configuration.change(K.authorization_cache_enabled, "False")
    configuration.change(K.stop_txn_sampled_data, "Energy.Active.Import.Register")

    after_restart = keys(reopen())

    assert after_restart.get_int(K.heartbeat_interval) == 120
    assert after_restart.get_bool(K.authorization_cache_enabled) is False
    assert after_restart.get_list(K.stop_txn_sampled_data) == ["Energy.Active.Import.Register"]


def test_stored_values_a_key_cannot_take_are_not_trusted(store: Store) -> None:
    store.put_setting("ocpp", "HeartbeatInterval", "soon")
    store.put_setting("ocpp", "NumberOfConnectors", "5")
    store.put_setting("ocpp", "UnlockConnectorOnEVSideDisconnect", "true")

    configuration = keys(store, connectors=1, lock=False)

    assert configuration.get_int(K.heartbeat_interval) == 300
    assert configuration.get_int(K.number_of_connectors) == 1
    assert configuration.get_bool(K.unlock_connector_on_ev_side_disconnect) is False


def test_listeners_hear_accepted_changes_only(store: Store) -> None:
    configuration = keys(store)
    heard: list[tuple[str, str]] = []
    configuration.subscribe(lambda key, value: heard.append((key, value)))

    configuration.change(K.heartbeat_interval, "abc")
    configuration.change(K.number_of_connectors, "3")
    configuration.change("Foo", "1")
    configuration.change(K.heartbeat_interval, "0120")
    configuration.change(K.stop_transaction_on_invalid_id, "FALSE")

    assert heard == [("HeartbeatInterval", "120"), ("StopTransactionOnInvalidId", "false")]


def test_reading_a_key_as_the_wrong_type_is_an_error(store: Store) -> None:
    configuration = keys(store)

    with pytest.raises(TypeError):
        configuration.get_int(K.local_pre_authorize)
    with pytest.raises(KeyError):
        configuration.get_bool("NoSuchKey")


@pytest.mark.parametrize(("key", "value"), SMART_CHARGING_KEYS.items())
def test_smart_charging_keys_are_reported_read_only_and_refuse_changes(
    store: Store, key: str, value: str
) -> None:
    configuration = keys(store)
    assert reported(configuration, key) == KeyValue(key, True, value)
    assert configuration.change(key, "1") is ChangeResult.REJECTED
