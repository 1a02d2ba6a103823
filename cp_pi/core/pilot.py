"""The control pilot and proximity pilot of IEC 61851-1 (Annex A) and IEC 62196-2, as rules.

The vehicle tells its state by how it loads the charger's +-12 V, 1 kHz pilot wave; the charger
tells the current on offer by the wave's duty cycle; the plug tells its cable's rating by a
resistor on the proximity pilot. Everything here is arithmetic on levels already read, so the
thresholds, the debounce and the formulas are tested without an ADC or a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class PilotState(StrEnum):
    """The vehicle's side of the pilot, by the high level of the wave."""

    #: +12 V: no vehicle.
    A = "A"
    #: +9 V: a vehicle is connected and does not ask for energy.
    B = "B"
    #: +6 V: the vehicle asks for energy.
    C = "C"
    #: +3 V: the vehicle asks for energy and needs ventilation.
    D = "D"
    #: 0 V: the pilot is shorted to PE (or the charger has no supply).
    E = "E"
    #: -12 V: the charger says it is not available (it drives this itself).
    F = "F"


#: The nominal high level of each state, volts.
NOMINAL_HIGH_V = {
    PilotState.A: 12.0,
    PilotState.B: 9.0,
    PilotState.C: 6.0,
    PilotState.D: 3.0,
    PilotState.E: 0.0,
    PilotState.F: -12.0,
}

#: Volts a level must go past a threshold before it leaves the state it is in: a level that
#: sits on a threshold (a vehicle at the edge of its tolerance) does not flicker between states.
HYSTERESIS_V = 0.4

#: The low phase reads -12 V through the vehicle's diode. Without the diode the vehicle's
#: resistors pull it up to about -8.8 V in B and -5.6 V in C (1 kOhm source resistor), so
#: half-way between -12 V and the B level is the line: above it the diode is missing.
DIODE_LOW_MAX_V = -10.5

#: Below this no charging current can be offered (PWM off, state x1).
MIN_CURRENT_A = 6.0
#: The duty formula ends here; a larger offer is capped.
MAX_CURRENT_A = 80.0


def _bands() -> list[tuple[PilotState, float, float]]:
    """Each state's band of high levels, with thresholds half-way between nominal levels."""
    states = sorted(NOMINAL_HIGH_V, key=NOMINAL_HIGH_V.__getitem__, reverse=True)
    bands = []
    for index, state in enumerate(states):
        upper = (
            math.inf
            if index == 0
            else (NOMINAL_HIGH_V[states[index - 1]] + NOMINAL_HIGH_V[state]) / 2
        )
        lower = (
            -math.inf
            if index == len(states) - 1
            else (NOMINAL_HIGH_V[states[index + 1]] + NOMINAL_HIGH_V[state]) / 2
        )
        bands.append((state, lower, upper))
    return bands


BANDS = _bands()


def classify(high_v: float, previous: PilotState | None = None) -> PilotState:
    """The state a high level stands for; ``previous`` is kept while the level stays within its
    band widened by :data:`HYSTERESIS_V`."""
    if previous is not None:
        for state, lower, upper in BANDS:
            if state is previous and lower - HYSTERESIS_V <= high_v < upper + HYSTERESIS_V:
                return previous
    for state, lower, upper in BANDS:
        if lower <= high_v < upper:
            return state
    return PilotState.F  # NaN and the like: not a vehicle


def diode_present(state: PilotState, low_v: float | None) -> bool:
    """The diode check: only a vehicle (B, C, D) under a running wave (``low_v`` read) has one
    to check; elsewhere there is nothing to fault."""
    if low_v is None or state not in (PilotState.B, PilotState.C, PilotState.D):
        return True
    return low_v <= DIODE_LOW_MAX_V


@dataclass(frozen=True, slots=True)
class PilotReading:
    """What the pilot says once debounced: the vehicle's state and whether its diode answers."""

    state: PilotState
    diode_ok: bool = True

    @property
    def fault(self) -> str | None:
        """Why this reading must never be charged on, in words for the StatusNotification."""
        if not self.diode_ok:
            return "control pilot: the vehicle's diode is missing"
        if self.state is PilotState.E:
            return "control pilot shorted to PE (state E)"
        return None


class PilotDebounce:
    """A new reading counts once ``samples`` consecutive samples agree on it.

    Fed one sample at a time by the sampler; :attr:`settling` says a change is being confirmed,
    which is when the sampler should look quickly.
    """

    def __init__(self, samples: int = 3, initial: PilotState = PilotState.A) -> None:
        if samples < 1:
            raise ValueError("the debounce needs at least one sample")
        self._samples = samples
        self.reading = PilotReading(initial)
        self._pending: PilotReading | None = None
        self._count = 0

    @property
    def settling(self) -> bool:
        return self._pending is not None

    def feed(self, high_v: float, low_v: float | None = None) -> bool:
        """Take one sample (``low_v`` None while the wave is not running); True when the
        debounced reading changed."""
        state = classify(high_v, self.reading.state)
        candidate = PilotReading(state, diode_present(state, low_v))
        if candidate == self.reading:
            self._pending, self._count = None, 0
            return False
        if candidate == self._pending:
            self._count += 1
        else:
            self._pending, self._count = candidate, 1
        if self._count < self._samples:
            return False
        self.reading, self._pending, self._count = candidate, None, 0
        return True

    def reset(self, state: PilotState) -> None:
        """Start again from ``state`` (the charger drove F, or released it)."""
        self.reading, self._pending, self._count = PilotReading(state), None, 0


def duty_percent(amps: float | None) -> float | None:
    """The duty cycle that offers ``amps``, per IEC 61851-1 Annex A; None: PWM off (x1).

    6..51 A: I / 0.6; 51..80 A: I / 2.5 + 64; above 80 A the offer is capped at 80 A; below
    6 A (or no offer at all) nothing can be offered and the wave stops.
    """
    if amps is None or amps < MIN_CURRENT_A:
        return None
    amps = min(amps, MAX_CURRENT_A)
    if amps <= 51.0:
        return amps / 0.6
    return amps / 2.5 + 64.0


def current_for_duty(duty: float) -> float:
    """The current a duty cycle (percent) offers: what a vehicle reads off the wave."""
    if duty <= 85.0:
        return duty * 0.6
    return (duty - 64.0) * 2.5


def allows_energy(
    reading: PilotReading,
    *,
    pwm_on: bool,
    ventilation: bool,
    cable_ok: bool,
) -> bool:
    """The pilot's word on the contactor: closed only in C2 (D2 where ventilation is present),
    with the diode answering and a valid cable coding."""
    if not (pwm_on and cable_ok and reading.diode_ok):
        return False
    return reading.state is PilotState.C or (reading.state is PilotState.D and ventilation)


# -- the analog front end ---------------------------------------------------------------------

#: The CP peak detectors map -12..+12 V linearly onto the ADC's 0..Vref (a divider and an
#: offset, drawn in wiring.md): the ADC's fraction of full scale is (V + 12) / 24.
CP_SPAN_V = 24.0


def cp_volts(fraction: float) -> float:
    return fraction * CP_SPAN_V - CP_SPAN_V / 2


def cp_fraction(volts: float) -> float:
    return min(1.0, max(0.0, (volts + CP_SPAN_V / 2) / CP_SPAN_V))


#: The PP line's pull-up to the ADC's reference; the plug's resistor goes to PE.
PP_PULL_UP_OHMS = 1000.0
#: Above this the line counts as open: no plug.
PP_OPEN_OHMS = 5000.0


def pp_ohms(fraction: float) -> float:
    """The plug's resistor from the ADC's fraction of full scale (a divider with the pull-up)."""
    if fraction >= 1.0:
        return math.inf
    return PP_PULL_UP_OHMS * max(0.0, fraction) / (1.0 - fraction)


def pp_fraction(ohms: float) -> float:
    if math.isinf(ohms):
        return 1.0
    return ohms / (ohms + PP_PULL_UP_OHMS)


class PpFault(StrEnum):
    NO_PLUG = "no plug"
    INVALID = "invalid"


#: The coding resistors of IEC 62196-2 / IEC 61851-1 and the band each is recognised in
#: (about +-20 %: the resistor's tolerance, the pull-up's and the ADC's); between the bands the
#: coding is damaged, never guessed.
PP_BANDS: tuple[tuple[int, float, float, float], ...] = (
    # (amps, nominal ohms, lowest, highest)
    (13, 1500.0, 1200.0, 1900.0),
    (20, 680.0, 540.0, 850.0),
    (32, 220.0, 175.0, 275.0),
    (63, 100.0, 80.0, 125.0),
)


def cable_rating(ohms: float) -> int | PpFault:
    """The cable's current rating in amperes from its coding resistor, or why there is none."""
    if math.isnan(ohms):
        return PpFault.INVALID
    if ohms > PP_OPEN_OHMS:
        return PpFault.NO_PLUG
    for amps, _, lowest, highest in PP_BANDS:
        if lowest <= ohms <= highest:
            return amps
    return PpFault.INVALID


def nominal_ohms(amps: int) -> float:
    """The coding resistor of a cable rated ``amps`` (the rig's plugs)."""
    for rated, nominal, _, _ in PP_BANDS:
        if rated == amps:
            return nominal
    raise ValueError(f"no cable is coded for {amps} A; use one of 13, 20, 32, 63")


# -- the current on offer ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """The current a connector offers and the term that set it."""

    amps: float
    #: "cable" | "config" | a charging profile purpose ("TxProfile", ...).
    source: str

    @property
    def duty(self) -> float | None:
        return duty_percent(self.amps)


def offered_current(
    *,
    max_current: float,
    cable_a: float | None = None,
    limit_a: float | None = None,
    limit_source: str | None = None,
) -> Offer:
    """min(cable rating, installation limit, charging-profile limit): the smallest term wins;
    on a tie the fixed terms name it (the cable before the configuration before a profile)."""
    terms = [Offer(max_current, "config")]
    if cable_a is not None:
        terms.insert(0, Offer(cable_a, "cable"))
    if limit_a is not None:
        terms.append(Offer(max(0.0, limit_a), limit_source or "profile"))
    return min(terms, key=lambda term: term.amps)
