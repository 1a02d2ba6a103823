"""The pilot's rules: states by thresholds with hysteresis and debounce, the diode check, the duty
formula, the cable coding and the current on offer."""

from __future__ import annotations

import math

import pytest

from cp_pi.core.pilot import (
    HYSTERESIS_V,
    Offer,
    PilotDebounce,
    PilotReading,
    PilotState,
    PpFault,
    allows_energy,
    cable_rating,
    classify,
    cp_fraction,
    cp_volts,
    diode_present,
    duty_percent,
    nominal_ohms,
    offered_current,
    pp_fraction,
    pp_ohms,
)

S = PilotState


@pytest.mark.parametrize(
    ("volts", "state"),
    [
        (12.0, S.A),
        (11.0, S.A),
        (10.6, S.A),
        (10.4, S.B),
        (9.0, S.B),
        (7.6, S.B),
        (7.4, S.C),
        (6.0, S.C),
        (4.6, S.C),
        (4.4, S.D),
        (3.0, S.D),
        (1.6, S.D),
        (1.4, S.E),
        (0.0, S.E),
        (-5.9, S.E),
        (-6.1, S.F),
        (-12.0, S.F),
        (math.nan, S.F),
    ],
)
def test_states_are_split_half_way_between_nominal_levels(volts: float, state: PilotState) -> None:
    assert classify(volts) is state


def test_a_level_near_a_threshold_keeps_the_state_it_is_in() -> None:
    # 7.4 V is C from nowhere, but a vehicle in B must go past the threshold by the hysteresis.
    assert classify(7.4, S.B) is S.B
    assert classify(7.5 - HYSTERESIS_V - 0.01, S.B) is S.C
    assert classify(7.6, S.C) is S.C
    assert classify(7.5 + HYSTERESIS_V + 0.01, S.C) is S.B


def test_a_new_state_counts_after_n_agreeing_samples() -> None:
    debounce = PilotDebounce(samples=3)
    assert not debounce.feed(9.0)
    assert debounce.settling
    assert not debounce.feed(9.0)
    assert debounce.reading.state is S.A
    assert debounce.feed(9.0)
    assert debounce.reading == PilotReading(S.B)
    assert not debounce.settling


def test_a_single_disagreeing_sample_restarts_the_count() -> None:
    debounce = PilotDebounce(samples=3)
    debounce.feed(9.0)
    debounce.feed(9.0)
    debounce.feed(12.0)  # a spike back to A: the change is not confirmed
    assert not debounce.settling
    debounce.feed(9.0)
    debounce.feed(9.0)
    assert debounce.reading.state is S.A
    assert debounce.feed(9.0)


def test_the_diode_check_faults_a_vehicle_whose_low_phase_is_not_minus_12_v() -> None:
    assert diode_present(S.C, -12.0)
    assert not diode_present(S.C, -5.6)
    assert not diode_present(S.B, -8.8)
    assert diode_present(S.C, None)  # no wave running: nothing to check
    assert diode_present(S.A, 0.0)  # no vehicle: nothing to check
    debounce = PilotDebounce(samples=2, initial=S.C)
    debounce.feed(6.0, -5.6)
    assert debounce.feed(6.0, -5.6)
    assert debounce.reading == PilotReading(S.C, diode_ok=False)
    assert debounce.reading.fault is not None
    assert "diode" in debounce.reading.fault


def test_state_e_is_a_fault_reading() -> None:
    assert PilotReading(S.E).fault is not None
    assert PilotReading(S.C).fault is None


@pytest.mark.parametrize(
    ("amps", "duty"),
    [
        (6.0, 10.0),
        (10.0, 16.667),
        (16.0, 26.667),
        (32.0, 53.333),
        (51.0, 85.0),
        (63.0, 89.2),
        (80.0, 96.0),
        (100.0, 96.0),
    ],
)
def test_duty_follows_the_standard_formula(amps: float, duty: float) -> None:
    result = duty_percent(amps)
    assert result is not None
    assert result == pytest.approx(duty, abs=0.001)


@pytest.mark.parametrize("amps", [None, 0.0, 5.9])
def test_below_6_a_the_wave_stops(amps: float | None) -> None:
    assert duty_percent(amps) is None


def test_energy_only_in_c2_or_d2_with_ventilation_and_a_valid_cable() -> None:
    c = PilotReading(S.C)
    assert allows_energy(c, pwm_on=True, ventilation=False, cable_ok=True)
    assert not allows_energy(c, pwm_on=False, ventilation=False, cable_ok=True)  # C1
    assert not allows_energy(c, pwm_on=True, ventilation=False, cable_ok=False)
    assert not allows_energy(
        PilotReading(S.C, diode_ok=False), pwm_on=True, ventilation=True, cable_ok=True
    )
    d = PilotReading(S.D)
    assert not allows_energy(d, pwm_on=True, ventilation=False, cable_ok=True)
    assert allows_energy(d, pwm_on=True, ventilation=True, cable_ok=True)
    for state in (S.A, S.B, S.E, S.F):
        assert not allows_energy(PilotReading(state), pwm_on=True, ventilation=True, cable_ok=True)


@pytest.mark.parametrize("amps", [13, 20, 32, 63])
def test_each_coding_resistor_gives_its_rating_through_the_adc(amps: int) -> None:
    ohms = pp_ohms(pp_fraction(nominal_ohms(amps)))
    assert cable_rating(ohms) == amps
    assert cable_rating(ohms * 1.15) == amps
    assert cable_rating(ohms * 0.85) == amps


@pytest.mark.parametrize("ohms", [0.0, 50.0, 150.0, 400.0, 1000.0, 2500.0, math.nan])
def test_a_resistor_outside_every_band_is_invalid(ohms: float) -> None:
    assert cable_rating(ohms) is PpFault.INVALID


def test_an_open_line_is_no_plug() -> None:
    assert cable_rating(pp_ohms(1.0)) is PpFault.NO_PLUG
    assert cable_rating(10_000.0) is PpFault.NO_PLUG


def test_cp_levels_round_trip_through_the_adc_scale() -> None:
    for volts in (12.0, 9.0, 6.0, 3.0, 0.0, -12.0):
        assert cp_volts(cp_fraction(volts)) == pytest.approx(volts)


def test_the_smallest_term_of_the_offer_wins_and_names_itself() -> None:
    assert offered_current(max_current=32) == Offer(32, "config")
    assert offered_current(max_current=32, cable_a=20) == Offer(20, "cable")
    assert offered_current(max_current=16, cable_a=32) == Offer(16, "config")
    assert offered_current(
        max_current=32, cable_a=32, limit_a=10, limit_source="TxProfile"
    ) == Offer(10, "TxProfile")
    assert offered_current(max_current=32, cable_a=32, limit_a=32, limit_source="TxProfile") == (
        Offer(32, "cable")
    )
    assert offered_current(max_current=32, limit_a=4, limit_source="TxDefaultProfile").duty is None
