"""The control pilot and proximity pilot over OCPP: what the vehicle's state, the cable's coding
and the current on offer do to the contactor, the pilot's wave and the statuses."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from cp_pi.app import Station
from cp_pi.config import ConnectorConfig, LockConfig, PilotConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.conftest import CP_ID, FAST_LOCK, StationFactory, rig_of
from tests.ocpp16.helpers import call_index, calls, mark, status_reached, until

OWNER = "OWNER-1"
CONTACTOR_PIN, PILOT_PIN = 24, 18


def connectors(**pilot: Any) -> list[ConnectorConfig]:
    """One connector whose pilot is sampled quickly enough for a fast suite."""
    fast = {"sample_idle": 0.02, "sample_active": 0.002, "ev_wait": 0.5} | pilot
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), pilot=PilotConfig(**fast))]


def watch(station: Station) -> None:
    """Record the pilot and contactor pins from here on (boot drove the pilot to F and back)."""
    for pin in (PILOT_PIN, CONTACTOR_PIN):
        station.pin_factory.pin(pin).clear_states()


def wave(station: Station) -> list[float]:
    """The values the pilot's PWM pin took, oldest first, without repeats."""
    values: list[float] = []
    for state in station.pin_factory.pin(PILOT_PIN).states:
        if not values or values[-1] != state.state:
            values.append(round(state.state, 4))
    return values


def contactor_levels(station: Station) -> list[bool]:
    levels: list[bool] = []
    for state in station.pin_factory.pin(CONTACTOR_PIN).states:
        if not levels or levels[-1] != bool(state.state):
            levels.append(bool(state.state))
    return levels


def state(station: Station) -> dict[str, Any]:
    return station.charger.connectors[1].state()


async def charging(station: Station, csms: CentralSystem, **plug: Any) -> int:
    """Plug a vehicle, present a tag, and wait for Charging; the mark before the plug."""
    watch(station)
    start = mark(csms)
    rig_of(station).plug(1, **plug)
    await status_reached(csms, "Preparing", after=start)
    station.charger.swipe(1, OWNER)
    await status_reached(csms, "Charging", after=start)
    return start


async def test_a_vehicle_in_b_is_preparing_and_charges_in_c2_once_authorized(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        watch(station)
        start = mark(csms)
        rig_of(station).plug(1)
        await status_reached(csms, "Preparing", after=start)
        await until(station, lambda: state(station)["pilot_state"] == "B")
        assert wave(station) == [1.0]  # steady +12 V: nothing offered before authorization
        assert contactor_levels(station) == [False]

        station.charger.swipe(1, OWNER)
        await status_reached(csms, "Charging", after=start)

        assert wave(station) == [1.0, 0.5333]  # 32 A: 53.3 % duty
        assert contactor_levels(station) == [False, True]
        assert state(station)["pilot_state"] == "C"
        assert [n["status"] for n in calls(csms, "StatusNotification", after=start)] == [
            "Preparing",
            "Charging",
        ]
        offered = state(station)
        assert offered["pilot_duty"] == 53.3
        assert offered["current_offered_a"] == 32
        assert offered["cable_rating_a"] == 32
        assert offered["limit_source"] == "cable"


async def test_b2_during_a_transaction_is_suspended_ev_and_c_charges_again(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        rig = rig_of(station)
        start = await charging(station, csms)

        rig.ev(1, "B")
        suspended = await status_reached(csms, "SuspendedEV", after=start)
        assert contactor_levels(station) == [False, True, False]
        assert wave(station) == [1.0, 0.5333]  # the offer stands

        rig.ev(1, "C")
        await status_reached(csms, "Charging", after=suspended)
        assert contactor_levels(station) == [False, True, False, True]
        assert len(calls(csms, "StartTransaction", after=start)) == 1
        assert not calls(csms, "StopTransaction", after=start)


async def test_the_contactor_opens_in_the_pilots_sample_without_the_event_loop(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        await charging(station, csms)
        rig_of(station).ev(1, "B")
        # The loop is held on purpose: only the sampler's thread can act.
        time.sleep(0.1)  # noqa: ASYNC251
        assert contactor_levels(station) == [False, True, False]


async def test_below_6_a_the_wave_stops_suspended_evse_and_back_to_charging(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        start = await charging(station, csms)
        connector = station.charger.connectors[1]

        connector.apply_limit(20, "TxProfile")
        assert wave(station)[-1] == pytest.approx(20 / 0.6 / 100, abs=1e-4)  # in the same call
        assert state(station)["limit_source"] == "TxProfile"
        assert state(station)["current_offered_a"] == 20

        connector.apply_limit(5, "TxProfile")
        assert wave(station)[-1] == 1.0  # no wave: steady +12 V
        assert contactor_levels(station)[-1] is False  # opened in the call
        suspended = await status_reached(csms, "SuspendedEVSE", after=start)
        assert state(station)["pilot_duty"] is None
        assert state(station)["current_offered_a"] == 0

        connector.apply_limit(16, "TxProfile")
        assert wave(station)[-1] == pytest.approx(16 / 0.6 / 100, abs=1e-4)
        await status_reached(csms, "Charging", after=suspended)

        connector.apply_limit(None, "TxProfile")  # the profile ended: the cable's 32 A again
        assert wave(station)[-1] == 0.5333
        assert state(station)["limit_source"] == "cable"


async def test_the_cable_rating_limits_the_offer(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        await charging(station, csms, cable_rating=13)
        assert wave(station)[-1] == pytest.approx(13 / 0.6 / 100, abs=1e-4)
        assert state(station)["cable_rating_a"] == 13
        assert state(station)["limit_source"] == "cable"


async def test_the_offer_never_exceeds_max_current(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    configs = connectors()
    configs[0].max_current = 16
    async with make_station(connectors=configs) as station:
        await charging(station, csms, cable_rating=63)
        assert wave(station)[-1] == pytest.approx(16 / 0.6 / 100, abs=1e-4)
        assert state(station)["limit_source"] == "config"


async def test_a_damaged_cable_coding_faults_and_gives_no_energy(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        rig = rig_of(station)
        watch(station)
        start = mark(csms)
        rig.plug(1, cable_rating="bad")
        faulted = await status_reached(csms, "Faulted", after=start, error_code="OtherError")
        [notification] = [
            n for n in calls(csms, "StatusNotification", after=start) if n["status"] == "Faulted"
        ]
        assert re.fullmatch(r"PP resistor 2[45]\d\d ohm: in no cable band", notification["info"])
        await until(station, lambda: wave(station)[-1] == 0.0)  # state F: not available

        station.charger.swipe(1, OWNER)
        assert not (await station.charger.connectors[1].hardware.close_contactor()).ok
        assert contactor_levels(station) == [False]

        rig.unplug(1)
        await status_reached(csms, "Available", after=faulted)
        assert wave(station)[-1] == 1.0
        assert not calls(csms, "StartTransaction", after=start)


@pytest.mark.parametrize(
    ("act", "info"),
    [
        ("diode", "control pilot: the vehicle's diode is missing"),
        ("E", "control pilot shorted to PE (state E)"),
    ],
)
async def test_a_missing_diode_or_state_e_while_charging_faults_and_stops(
    make_station: StationFactory, csms: CentralSystem, act: str, info: str
) -> None:
    async with make_station(connectors=connectors()) as station:
        rig = rig_of(station)
        start = await charging(station, csms)

        if act == "diode":
            rig.set_fault(1, RigFault.DIODE_MISSING)
        else:
            rig.ev(1, "E")
        await call_index(csms, "StopTransaction", after=start, reason="Other")
        faulted = await status_reached(csms, "Faulted", after=start, error_code="OtherError")
        assert csms.frames[faulted].frame[3]["info"] == info
        assert contactor_levels(station) == [False, True, False]


async def test_state_d_charges_only_with_ventilation(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        start = await charging(station, csms)
        rig_of(station).ev(1, "D")
        await status_reached(csms, "SuspendedEVSE", after=start)
        assert contactor_levels(station) == [False, True, False]


async def test_state_d_with_ventilation_charges(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors(ventilation=True)) as station:
        start = await charging(station, csms)
        rig_of(station).ev(1, "D")
        await until(station, lambda: state(station)["pilot_state"] == "D")
        assert contactor_levels(station) == [False, True]
        assert [n["status"] for n in calls(csms, "StatusNotification", after=start)][-1] == (
            "Charging"
        )


async def test_unavailable_drives_state_f(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        watch(station)
        start = mark(csms)
        answer = await csms.change_availability(CP_ID, 1, "Inoperative")
        assert answer["status"] == "Accepted"
        await status_reached(csms, "Unavailable", after=start)
        await until(station, lambda: wave(station)[-1] == 0.0)
        await until(station, lambda: state(station)["pilot_state"] == "F")

        await csms.change_availability(CP_ID, 1, "Operative")
        await status_reached(csms, "Available", after=start)
        assert wave(station) == [1.0, 0.0, 1.0]


async def test_tc_005_1_the_vehicle_unplugged_at_its_side_stops_the_transaction(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        rig = rig_of(station)
        start = await charging(station, csms)

        rig.ev(1, "A")  # the cable comes out at the vehicle; it stays in the socket
        await call_index(csms, "StopTransaction", after=start, reason="EVDisconnected")
        finishing = await status_reached(csms, "Finishing", after=start)
        assert contactor_levels(station) == [False, True, False]
        await until(station, lambda: not rig.lock_engaged(1))  # unlocked: the cable is free

        rig.unplug(1)
        await status_reached(csms, "Available", after=finishing)


async def test_tc_005_3_the_vehicle_unplugged_at_its_side_suspends_the_transaction(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        rig = rig_of(station)
        for key in ("StopTransactionOnEVSideDisconnect", "UnlockConnectorOnEVSideDisconnect"):
            assert (await csms.change_configuration(CP_ID, key, "false"))["status"] == "Accepted"
        start = await charging(station, csms)

        rig.ev(1, "A")
        suspended = await status_reached(csms, "SuspendedEV", after=start)
        assert csms.frames[suspended].frame[3]["info"] == "EV side disconnected"
        assert rig.lock_engaged(1)
        assert not calls(csms, "StopTransaction", after=start)

        rig.ev(1, "C")  # plugged in at the vehicle again: the same transaction goes on
        await status_reached(csms, "Charging", after=suspended)
        assert len(calls(csms, "StartTransaction", after=start)) == 1


async def test_current_offered_is_a_measurand(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(connectors=connectors()) as station:
        key, value = "MeterValuesSampledData", "Energy.Active.Import.Register,Current.Offered"
        assert (await csms.change_configuration(CP_ID, key, value))["status"] == "Accepted"
        start = await charging(station, csms, cable_rating=20)

        await csms.trigger_message(CP_ID, "MeterValues", connector_id=1)
        await call_index(csms, "MeterValues", after=start)
        [meter_values] = calls(csms, "MeterValues", after=start)
        sampled = meter_values["meterValue"][0]["sampledValue"]
        assert [(s["measurand"], s.get("unit")) for s in sampled] == [
            ("Energy.Active.Import.Register", "Wh"),
            ("Current.Offered", "A"),
        ]
        assert sampled[1]["value"] == "20"


async def test_without_a_pilot_the_contactor_follows_the_transaction_alone(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    configs = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), pilot=None)]
    async with make_station(connectors=configs) as station:
        await charging(station, csms)
        assert state(station)["pilot_state"] is None
        assert state(station)["current_offered_a"] is None
        assert contactor_levels(station) == [False, True]
