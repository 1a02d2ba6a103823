"""A Modbus meter through the real charge point and the embedded central system: meterStart
from the meter, PowerMeterFailure while it is silent or answers garbage, and back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from cp_pi.config import ConnectorConfig, LockConfig, MeterFailure
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.meter_maps import SDM630
from tests.conftest import CP_ID, FAST_LOCK, StationFactory
from tests.hardware.modbus_server import SdmServer, meter_config, running_sdm
from tests.ocpp16.helpers import mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging


@pytest.fixture
async def sdm() -> AsyncIterator[SdmServer]:
    async with running_sdm() as server:
        await server.set_phases(SDM630, volts=230.0, amps=16.0, watts=3680.0, kwh=12.345)
        yield server


def connectors(sdm: SdmServer) -> list[ConnectorConfig]:
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), meter=meter_config(sdm))]


async def test_meter_start_is_the_modbus_meters_register_in_wh(
    make_station: StationFactory, csms: CentralSystem, sdm: SdmServer
) -> None:
    async with make_station(connectors=connectors(sdm)) as station:
        start = mark(csms)
        await start_charging(station, csms)
        record = await csms.wait_for_call(CP_ID, "StartTransaction", after=start)
        assert record.frame[3]["meterStart"] == 12345


async def test_a_silent_meter_is_a_power_meter_failure_and_charging_goes_on(
    make_station: StationFactory,
    csms: CentralSystem,
    sdm: SdmServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with make_station(connectors=connectors(sdm)) as station:
        transaction_id = await start_charging(station, csms)
        await sdm.set(SDM630.import_energy_kwh, 12.5)
        await station.connectors[1].meter.refresh()
        before = mark(csms)
        await sdm.stop()
        await status_reached(csms, "Charging", after=before, error_code="PowerMeterFailure")
        assert station.connectors[1].hardware.contactor_closed  # on_failure = "continue"

        healed = mark(csms)
        await sdm.start()
        await status_reached(csms, "Charging", after=healed)

        garbage = mark(csms)
        await sdm.set(SDM630.import_energy_kwh, float("nan"))
        await status_reached(csms, "Charging", after=garbage, error_code="PowerMeterFailure")

        stop = mark(csms)
        answer = await csms.remote_stop(CP_ID, transaction_id)
        assert answer["status"] == "Accepted"
        record = await csms.wait_for_call(CP_ID, "StopTransaction", after=stop)
        assert record.frame[3]["meterStop"] == 12500
    logged = [r.getMessage() for r in caplog.records]
    assert any("meterStop is its last good reading, 12500 Wh" in line for line in logged), logged


async def test_energy_going_backwards_is_a_power_meter_failure(
    make_station: StationFactory, csms: CentralSystem, sdm: SdmServer
) -> None:
    async with make_station(connectors=connectors(sdm)) as station:
        await start_charging(station, csms)
        before = mark(csms)
        await sdm.set(SDM630.import_energy_kwh, 12.0)
        await status_reached(csms, "Charging", after=before, error_code="PowerMeterFailure")
        assert station.connectors[1].meter.read_wh() == 12345


async def test_meter_values_carry_what_the_modbus_meter_measures(
    make_station: StationFactory, csms: CentralSystem, sdm: SdmServer
) -> None:
    async with make_station(connectors=connectors(sdm)) as station:
        measurands = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage.L2-N"
        answer = await csms.change_configuration(CP_ID, "MeterValuesSampledData", measurands)
        assert answer == {"status": "Accepted"}
        refused = await csms.change_configuration(CP_ID, "MeterValuesSampledData", "Frequency")
        assert refused == {"status": "Rejected"}
        await csms.change_configuration(CP_ID, "MeterValueSampleInterval", "1")
        start = mark(csms)
        await start_charging(station, csms)
        record = await csms.wait_for_call(CP_ID, "MeterValues", after=start)
        sampled = [
            (value["measurand"], value.get("phase"), value["value"], value["unit"])
            for value in record.frame[3]["meterValue"][0]["sampledValue"]
        ]
        assert sampled == [
            ("Energy.Active.Import.Register", None, "12345", "Wh"),
            ("Power.Active.Import", None, "11040", "W"),
            ("Current.Import", "L1", "16", "A"),
            ("Current.Import", "L2", "16", "A"),
            ("Current.Import", "L3", "16", "A"),
            ("Voltage", "L2-N", "230", "V"),
        ]


def stopping_connectors(sdm: SdmServer) -> list[ConnectorConfig]:
    meter = meter_config(sdm).model_copy(update={"on_failure": MeterFailure.STOP})
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), meter=meter)]


@pytest.mark.parametrize("failure", ["silent", "nan", "backwards"])
async def test_on_failure_stop_ends_the_transaction_and_refuses_starts_until_the_meter_is_back(
    make_station: StationFactory, csms: CentralSystem, sdm: SdmServer, failure: str
) -> None:
    """StopTransaction's reason is Other (none of OCPP 1.6's other Reason values is a failed
    meter); meterStop is the last good register."""
    async with make_station(connectors=stopping_connectors(sdm)) as station:
        transaction_id = await start_charging(station, csms)
        await sdm.set(SDM630.import_energy_kwh, 12.5)
        await station.connectors[1].meter.refresh()
        before = mark(csms)

        if failure == "silent":
            await sdm.stop()
        else:
            await sdm.set(SDM630.import_energy_kwh, float("nan") if failure == "nan" else 12.4)

        record = await csms.wait_for_call(CP_ID, "StopTransaction", after=before)
        assert record.frame[3]["transactionId"] == transaction_id
        assert (record.frame[3]["reason"], record.frame[3]["meterStop"]) == ("Other", 12500)
        await status_reached(csms, "Faulted", after=before, error_code="PowerMeterFailure")
        assert not station.connectors[1].hardware.contactor_closed
        refused = await csms.remote_start(CP_ID, "TAG2", connector_id=1)
        assert refused == {"status": "Rejected"}

        back = mark(csms)
        await sdm.set(SDM630.import_energy_kwh, 12.6)
        if failure == "silent":
            await sdm.start()
        await status_reached(csms, "Finishing", after=back)  # the cable is still in
        assert (await csms.remote_start(CP_ID, "TAG2", connector_id=1))["status"] == "Accepted"
        started = await csms.wait_for_call(CP_ID, "StartTransaction", after=back)
        assert started.frame[3]["meterStart"] == 12600
