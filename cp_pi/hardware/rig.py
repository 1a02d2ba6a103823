"""The bench rig: the physical world of a charge point, simulated on gpiozero's mock pins.

The rig attaches one simulator to each part of a connector, by the roles of its pins: the cable,
the latch, the contactor (whose energy the simulated meter reads). It watches the output pins the
way gpiozero's own ``MockConnectedPin`` does (a ``MockPin`` subclass installed with
``factory.pin(n, pin_class=...)`` before any device claims the pin) and answers on the input pins
with ``drive_high()``/``drive_low()``, with the delays of real parts: a latch moves only when its
coil or motor is held on for ``lock_travel_time``; the contactor's aux contact follows the output
after ``contactor_delay``. Faults break one part of that world.
Everything happens on the event loop; pin changes from other threads are handed over with
``call_on_loop``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from gpiozero.exc import PinError
from gpiozero.pins.mock import (
    MockFactory,
    MockPin,
    MockSPIClockPin,
    MockSPIDevice,
    MockSPISelectPin,
)

from cp_pi.config import (
    CONTACTOR,
    CONTACTOR_AUX,
    LOCK_DRIVE,
    LOCK_FEEDBACK,
    PROXIMITY,
    RCD_TEST,
    RCD_TRIP,
    SPI_PINS,
    UNLOCK_DRIVE,
    ActiveLevel,
    AdcChip,
    AdcConfig,
    ConnectorConfig,
    LockKind,
    RigConfig,
)
from cp_pi.core.metering import CURRENT, ENERGY_REGISTER, POWER, VOLTAGE, Reading, per_phase
from cp_pi.core.pilot import (
    NOMINAL_HIGH_V,
    PilotState,
    cp_fraction,
    current_for_duty,
    nominal_ohms,
    pp_fraction,
)
from cp_pi.hardware.inputs import call_on_loop
from cp_pi.hardware.meter import PolledMeter


class RigFault(StrEnum):
    NONE = "none"
    #: The latch never moves, whatever drives it.
    LOCK_STUCK = "lock_stuck"
    #: The feedback wire is cut: the input reads "not locked".
    FEEDBACK_BROKEN = "feedback_broken"
    #: From the next close on, the main contacts (and so the aux contact) stay closed.
    CONTACTOR_WELDED = "contactor_welded"
    #: Reading the lock feedback pin raises, as a pin driver does when the chip goes away.
    FEEDBACK_UNREADABLE = "feedback_unreadable"
    #: Current leaks to earth: the residual-current monitor trips and stays tripped.
    RCD_TRIP = "rcd_trip"
    #: The vehicle's pilot diode is missing: the pilot's low phase does not reach -12 V.
    DIODE_MISSING = "diode_missing"
    #: The energy meter stops answering (its bus is cut); it answers again when healed.
    METER_OFFLINE = "meter_offline"


#: A plug whose coding resistor is in no band (a damaged cable): ``cable_rating = "bad"``.
BAD_CABLE_OHMS = 2500.0

#: The vehicle's resistance from CP to PE in each state (IEC 61851-1 Annex A), ohms: what the
#: pilot's low phase sinks to when the diode is missing (1 kOhm source resistor).
_VEHICLE_OHMS = {PilotState.B: 2740.0, PilotState.C: 882.0, PilotState.D: 246.0}


class UnreadablePin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """An input pin whose reads can be made to fail, like a pin lost to a wiring fault."""

    def __init__(self, factory: MockFactory, info: Any) -> None:
        super().__init__(factory, info)
        self.failing = False

    def _get_state(self) -> Any:
        if self.failing:
            raise PinError(f"{self.info.name}: simulated read failure")
        return super()._get_state()


class _WatchedPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """An output pin that reports each change of level, wherever it was switched from."""

    def __init__(self, factory: MockFactory, info: Any, on_level: Callable[[bool], None]) -> None:
        super().__init__(factory, info)
        self._on_level = on_level

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self._function == "output":
            self._on_level(bool(value))
        return changed


class _WatchedPwmPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """A PWM output pin that reports each change of its value (the duty, 0.0 .. 1.0).

    It does what gpiozero's ``MockPWMPin`` does, but as a plain ``MockPin`` subclass: the
    factory hands a pin of another class than its own ``pin_class`` only to a device that asks
    for the same PWM-ness, and a ``PWMOutputDevice`` asks with the factory's default class.
    """

    def __init__(self, factory: MockFactory, info: Any, on_value: Callable[[float], None]) -> None:
        super().__init__(factory, info)
        self._on_value = on_value
        self._frequency: float | None = None

    def _set_state(self, value: Any) -> None:
        if self._function != "output":
            super()._set_state(value)  # raises as an input does
            return
        self._change_state(float(value))

    def _get_frequency(self) -> float | None:
        return self._frequency

    def _set_frequency(self, value: float | None) -> None:
        self._frequency = value
        if value is None:
            self._change_state(0.0)

    def close(self) -> None:
        self._frequency = None
        super().close()

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self._function == "output":
            self._on_value(float(value))
        return changed


class _UnrecordedPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """A mock pin that keeps no history: an SPI line toggles some 50 times per ADC read, and a
    ``MockPin`` remembers every change, which would grow without bound on a running bench."""

    def _change_state(self, value: Any) -> bool:
        if self.state == value:
            return False
        self._state = value
        return True


class _UnrecordedClockPin(_UnrecordedPin, MockSPIClockPin):  # type: ignore[misc]
    pass


class _UnrecordedSelectPin(_UnrecordedPin, MockSPISelectPin):  # type: ignore[misc]
    pass


class _SimulatedAdc(MockSPIDevice):  # type: ignore[misc]  # gpiozero ships no type information
    """The station's MCP3008/MCP3208 on SPI0, answering gpiozero's single-ended reads with the
    levels the rig's world sets in :attr:`channels` (fractions of the reference).

    The protocol is the chip's own, bit by bit on the mock SPI pins: a start bit, the
    single-ended bit, three channel bits, then the result, most significant bit first.
    """

    def __init__(self, factory: MockFactory, chip: AdcChip) -> None:
        # Claimed first, with no history; the device below takes these pins as they are.
        factory.pin(SPI_PINS["adc.clock"], pin_class=_UnrecordedClockPin)
        factory.pin(SPI_PINS["adc.select"], pin_class=_UnrecordedSelectPin)
        factory.pin(SPI_PINS["adc.mosi"], pin_class=_UnrecordedPin)
        factory.pin(SPI_PINS["adc.miso"], pin_class=_UnrecordedPin)
        super().__init__(
            SPI_PINS["adc.clock"],
            SPI_PINS["adc.mosi"],
            SPI_PINS["adc.miso"],
            SPI_PINS["adc.select"],
            pin_factory=factory,
        )
        self._bits = 12 if chip is AdcChip.MCP3208 else 10
        self.rx_buf: list[int] = []
        self.channels = [0.0] * 8
        self._phase = "idle"

    def on_start(self) -> None:
        super().on_start()
        self._phase = "idle"

    def on_bit(self) -> None:
        received = self.rx_buf
        if self._phase == "idle":
            if received[-1]:
                self._phase, self.rx_buf = "mode", []
        elif self._phase == "mode":
            self._phase, self.rx_buf = "channel", []
        elif self._phase == "channel":
            if len(received) == 3:
                level = min(1.0, max(0.0, self.channels[self.rx_word()]))
                self.tx_word(round(level * (2**self._bits - 1)), self._bits + 2)
                self._phase = "result"
        elif self._phase == "result" and not self.tx_buf:
            self._phase, self.rx_buf = "idle", []


def _drive(pin: Any, active_level: ActiveLevel, active: bool) -> None:
    if (active_level is ActiveLevel.HIGH) == active:
        pin.drive_high()
    else:
        pin.drive_low()


class _Simulator:
    """What every part's simulator shares: the loop, pins it watches, timers it cancels."""

    def __init__(
        self, factory: MockFactory, rig: RigConfig, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._factory = factory
        self._rig = rig
        self._loop = loop
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    def _watch(self, pin: int, handler: Callable[[bool], None]) -> None:
        def on_level(on: bool) -> None:
            if not self._closed:
                call_on_loop(self._loop, handler, on)

        watched = self._factory.pin(pin, pin_class=_WatchedPin, on_level=on_level)
        if not isinstance(watched, _WatchedPin):
            raise RuntimeError(f"GPIO{pin} was claimed before the bench rig was built")

    def _later(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def set_fault(self, fault: RigFault) -> None:
        """Break (or, with ``none`` or another part's fault, heal) this part."""

    def close(self) -> None:
        self._closed = True
        for name in list(self._timers):
            self._cancel(name)


class _Cable(_Simulator):
    """The plug in the socket, seen by the proximity input."""

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(factory, rig, loop)
        self._active = config.proximity_active
        self._pin = factory.pin(config.pins[PROXIMITY])
        self.set(present=False)

    def set(self, *, present: bool) -> None:
        _drive(self._pin, self._active, present)

    def bounce(self, present: bool, edges: int) -> None:
        """A rattling plug: the proximity input flips `edges` times, ending at `present`."""
        for edge in range(edges):
            self.set(present=present if (edges - edge) % 2 == 1 else not present)


class _Latch(_Simulator):
    """The lock: its latch moves only when a drive output is held on for the travel time; the
    feedback switch reports it."""

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(factory, rig, loop)
        lock = config.lock
        self._active = lock.feedback_active
        self._push_push = lock.kind is LockKind.SOLENOID and lock.unlock_pin is None
        self.engaged = False
        self._fault = RigFault.NONE
        pins = config.pins
        self._feedback_pin = factory.pin(pins[LOCK_FEEDBACK], pin_class=UnreadablePin)
        for role in (LOCK_DRIVE, UNLOCK_DRIVE):
            if role in pins:
                self._watch(pins[role], self._drive_output(role))
        self._show()

    def _drive_output(self, role: str) -> Callable[[bool], None]:
        """What holding this output on for the travel time does to the latch."""
        # The latch position a full pulse leads to; None: the other one (push-push coil).
        towards = None if self._push_push else role == LOCK_DRIVE

        def on_level(on: bool) -> None:
            self._cancel(role)
            if on:
                self._later(role, self._rig.lock_travel_time, lambda: self._travel_done(towards))

        return on_level

    def _travel_done(self, towards: bool | None) -> None:
        if self._fault is not RigFault.LOCK_STUCK:
            self.engaged = not self.engaged if towards is None else towards
            self._show()

    def _show(self) -> None:
        reads_engaged = self.engaged and self._fault is not RigFault.FEEDBACK_BROKEN
        _drive(self._feedback_pin, self._active, reads_engaged)

    def set_fault(self, fault: RigFault) -> None:
        self._fault = fault
        self._feedback_pin.failing = fault is RigFault.FEEDBACK_UNREADABLE
        self._show()


class _Contactor(_Simulator):
    """The contactor: the aux contact follows the output after ``contactor_delay``, unless
    welded, and the vehicle draws its power while the output is on: ``power_w``, or what the
    simulated vehicle behind a pilot takes (:attr:`vehicle_power`)."""

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(factory, rig, loop)
        self._active = config.contactor.feedback_active
        self._welded = False
        self._weld_next = False
        self._on = False
        self._since = loop.time()
        self._power = 0.0
        self._energy_wh = 0.0
        #: Called after the output switched or the power drawn changed (the meter reads then).
        self.on_output: list[Callable[[], None]] = []
        #: The watts a vehicle behind a control pilot draws; None: ``power_w``.
        self.vehicle_power: Callable[[], float] | None = None
        pins = config.pins
        self._aux_pin = factory.pin(pins[CONTACTOR_AUX]) if CONTACTOR_AUX in pins else None
        self._watch(pins[CONTACTOR], self._output)
        self._show_aux(closed=False)

    def _output(self, on: bool) -> None:
        if on and not self._on and self._weld_next:
            self._welded = True
        self._on = on
        self.repower()
        self._later("aux", self._rig.contactor_delay, lambda: self._show_aux(closed=on))

    def repower(self) -> None:
        """Count the energy so far at the old power, then take the power drawn now."""
        now = self._loop.time()
        self._energy_wh += (now - self._since) * self._power / 3600
        self._since = now
        drawn = self._rig.power_w if self.vehicle_power is None else self.vehicle_power()
        self._power = drawn if self._on else 0.0
        for listener in self.on_output:
            listener()

    def _show_aux(self, *, closed: bool) -> None:
        if self._aux_pin is not None:
            _drive(self._aux_pin, self._active, closed or self._welded)

    def energy_wh(self) -> float:
        return self._energy_wh + (self._loop.time() - self._since) * self._power / 3600

    def power_w(self) -> float:
        """What the simulated vehicle draws through the contactor now."""
        return self._power

    def set_fault(self, fault: RigFault) -> None:
        self._weld_next = fault is RigFault.CONTACTOR_WELDED
        if self._weld_next:
            self._welded = self._welded or self._on
        elif self._welded:
            self._welded = False
            self._cancel("aux")
            self._show_aux(closed=self._on)


class _ResidualCurrent(_Simulator):
    """The residual-current monitor: tripped while current leaks (the ``rcd_trip`` fault), and
    for as long as its test input is held on, after ``contactor_delay`` (a module's reaction)."""

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(factory, rig, loop)
        module = config.rcd_module
        if module is None:
            raise ValueError("the rig plays a residual-current monitor only where one is wired")
        self._active = module.trip_active
        self._leaking = False
        self._testing = False
        pins = config.pins
        self._trip_pin = factory.pin(pins[RCD_TRIP])
        if RCD_TEST in pins:
            self._watch(pins[RCD_TEST], self._test_input)
        self._show()

    def _test_input(self, on: bool) -> None:
        self._cancel("test")
        if not on:
            self._testing = False
            self._show()
        else:
            self._later("test", self._rig.contactor_delay, self._test_trips)

    def _test_trips(self) -> None:
        self._testing = True
        self._show()

    def _show(self) -> None:
        _drive(self._trip_pin, self._active, self._leaking or self._testing)

    @property
    def tripped(self) -> bool:
        return self._leaking or self._testing

    def set_fault(self, fault: RigFault) -> None:
        self._leaking = fault is RigFault.RCD_TRIP
        self._show()


class _MeterBus(_Simulator):
    """The line to the connector's energy meter: silent while the ``meter_offline`` fault
    lasts. The simulated meter hears each change at once."""

    def __init__(
        self, factory: MockFactory, rig: RigConfig, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(factory, rig, loop)
        self.silent = False
        self.on_change: list[Callable[[], None]] = []

    def set_fault(self, fault: RigFault) -> None:
        silent = fault is RigFault.METER_OFFLINE
        if silent != self.silent:
            self.silent = silent
            for listener in list(self.on_change):
                listener()


class _Vehicle(_Simulator):
    """The vehicle at the cable's other end, seen by the control pilot and the PP resistor.

    It behaves as a real one does unless told otherwise: plugged in, it shows B; once the
    pilot's wave runs it asks for energy (C) after ``ev_delay``; when the wave stops it goes
    back to B; it draws min(offered current, ``ev_max_current``). An ``ev`` command sets its
    state by hand, and it stays there until the next command or plug.
    """

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
        adc: _SimulatedAdc,
        contactor: _Contactor,
    ) -> None:
        super().__init__(factory, rig, loop)
        pilot = config.pilot
        assert pilot is not None
        self._high = pilot.high_channel
        self._low = pilot.low_channel
        self._pp = None if config.pp is None else config.pp.channel
        self._adc = adc
        self._contactor = contactor
        self._wave = 1.0
        self.plugged = False
        self.state = PilotState.B
        self._by_hand = False
        self.diode = True
        self.cable_ohms = math.inf
        self._watch_wave(pilot.pwm_pin)
        contactor.vehicle_power = self.power_w
        self._show()

    def _watch_wave(self, pin: int) -> None:
        def on_value(value: float) -> None:
            if not self._closed:
                call_on_loop(self._loop, self._wave_changed, value)

        watched = self._factory.pin(pin, pin_class=_WatchedPwmPin, on_value=on_value)
        if not isinstance(watched, _WatchedPwmPin):
            raise RuntimeError(f"GPIO{pin} was claimed before the bench rig was built")

    @property
    def _running(self) -> bool:
        return 0.0 < self._wave < 1.0

    @property
    def offered_a(self) -> float:
        return current_for_duty(self._wave * 100) if self._running else 0.0

    def _wave_changed(self, value: float) -> None:
        self._wave = value
        self._follow()
        self._show()

    def _follow(self) -> None:
        """A real vehicle's answer to the wave: ask for energy once offered, stop when not."""
        if self._by_hand or not self.plugged:
            self._cancel("ask")
            return
        if self._running and self.state is PilotState.B:
            if "ask" not in self._timers:
                self._later("ask", self._rig.ev_delay, self._ask)
        elif not self._running:
            self._cancel("ask")
            if self.state is PilotState.C:
                self.state = PilotState.B

    def _ask(self) -> None:
        self._timers.pop("ask", None)
        if self.plugged and not self._by_hand and self._running:
            self.state = PilotState.C
            self._show()

    def plug(self, ohms: float) -> None:
        self.plugged, self.cable_ohms = True, ohms
        self.state, self._by_hand = PilotState.B, False
        self._follow()
        self._show()

    def unplug(self) -> None:
        self.plugged, self.cable_ohms = False, math.inf
        self._by_hand = False
        self._follow()
        self._show()

    def set_state(self, state: PilotState) -> None:
        if state is PilotState.F:
            raise ValueError("state F is the charger's, not the vehicle's")
        self.state, self._by_hand = state, True
        self._follow()
        self._show()

    def set_fault(self, fault: RigFault) -> None:
        self.diode = fault is not RigFault.DIODE_MISSING
        self._show()

    def levels(self) -> tuple[float, float]:
        """The pilot's high and low levels, volts, as the peak detectors hold them."""
        if self._wave <= 0.0:
            return -12.0, -12.0  # the charger drives F
        state = self.state if self.plugged else PilotState.A
        high = NOMINAL_HIGH_V[state]
        if state is PilotState.E:
            return 0.0, 0.0
        if not self._running:
            return high, high  # a steady level: no low phase
        if state is PilotState.A or self.diode:
            return high, -12.0
        ohms = _VEHICLE_OHMS[state]
        return high, -12.0 * ohms / (ohms + 1000.0)

    def power_w(self) -> float:
        """What the vehicle draws through a closed contactor: only in C or D under a wave."""
        if not (self.plugged and self._running and self.state in (PilotState.C, PilotState.D)):
            return 0.0
        amps = min(self.offered_a, self._rig.ev_max_current)
        return self._rig.power_w * amps / self._rig.ev_max_current

    def _show(self) -> None:
        high, low = self.levels()
        self._adc.channels[self._high] = cp_fraction(high)
        self._adc.channels[self._low] = cp_fraction(low)
        if self._pp is not None:
            self._adc.channels[self._pp] = pp_fraction(self.cable_ohms)
        self._contactor.repower()


class _Connector:
    """One connector's world: a simulator for each of its parts, attached by pin role."""

    def __init__(
        self,
        factory: MockFactory,
        config: ConnectorConfig,
        rig: RigConfig,
        loop: asyncio.AbstractEventLoop,
        adc: _SimulatedAdc | None,
    ) -> None:
        self.fault = RigFault.NONE
        self.cable = _Cable(factory, config, rig, loop)
        self.latch = _Latch(factory, config, rig, loop) if LOCK_FEEDBACK in config.pins else None
        self.contactor = _Contactor(factory, config, rig, loop)
        self.rcd = _ResidualCurrent(factory, config, rig, loop) if RCD_TRIP in config.pins else None
        self.vehicle = (
            None
            if config.pilot is None or adc is None
            else _Vehicle(factory, config, rig, loop, adc, self.contactor)
        )
        self.meter_bus = _MeterBus(factory, rig, loop)

    @property
    def parts(self) -> list[_Simulator]:
        latch: list[_Simulator] = [] if self.latch is None else [self.latch]
        rcd: list[_Simulator] = [] if self.rcd is None else [self.rcd]
        vehicle: list[_Simulator] = [] if self.vehicle is None else [self.vehicle]
        return [self.cable, *latch, self.contactor, *rcd, *vehicle, self.meter_bus]

    def set_fault(self, fault: RigFault) -> None:
        """One fault at a time: setting one (or ``none``) heals the others; the inputs re-sync."""
        self.fault = fault
        for part in self.parts:
            part.set_fault(fault)

    def close(self) -> None:
        for part in self.parts:
            part.close()


#: The simulated supply: three phases at 230 V to neutral.
SUPPLY_PHASES = 3
SUPPLY_VOLTAGE = 230.0


class SimulatedMeter(PolledMeter):
    """The energy register, the active power and each phase's power, current and voltage of
    one connector of the rig: a three-phase meter at 230 V whose vehicle's power is shared
    evenly by the phases.

    Taking a reading is arithmetic, no I/O. It is taken whenever the contactor output switches,
    so that the power read between two polls is the power drawn, and whenever its bus goes
    silent or answers again; and polled only while energy flows, since an idle register cannot
    move (a fleet of idle stations stays idle).
    """

    def __init__(self, contactor: _Contactor, bus: _MeterBus, poll_interval: float) -> None:
        super().__init__(_figures(0.0, 0.0), poll_interval)
        self._contactor = contactor
        self._bus = bus
        self._started = False
        contactor.on_output.append(self._switched)
        bus.on_change.append(self._take)
        self._take()

    def _readings(self) -> list[Reading]:
        if self._bus.silent:
            raise ConnectionError("no answer from the simulated meter (meter_offline)")
        return _figures(self._contactor.energy_wh(), self._contactor.power_w())

    def _take(self) -> None:
        try:
            readings = self._readings()
        except ConnectionError as error:
            self._failed(error)
        else:
            self._took(readings)

    async def _measure(self) -> list[Reading]:
        return self._readings()

    def start(self) -> None:
        self._started = True
        self._follow_the_output()

    def _switched(self) -> None:
        self._take()
        self._follow_the_output()

    def _follow_the_output(self) -> None:
        if self._started and self._contactor.power_w() > 0:
            super().start()
        else:
            super().close()  # stops polling

    def close(self) -> None:
        self._started = False
        super().close()
        if self._switched in self._contactor.on_output:
            self._contactor.on_output.remove(self._switched)
        if self._take in self._bus.on_change:
            self._bus.on_change.remove(self._take)


def _figures(energy_wh: float, power_w: float) -> list[Reading]:
    """What the simulated meter reads for a vehicle drawing ``power_w`` evenly on each phase."""
    watts = power_w / SUPPLY_PHASES
    phases = range(SUPPLY_PHASES)
    return [
        Reading(ENERGY_REGISTER, int(energy_wh), "Wh"),
        Reading(POWER, power_w, "W"),
        *per_phase(POWER, "W", [round(watts, 1) for _ in phases]),
        *per_phase(CURRENT, "A", [round(watts / SUPPLY_VOLTAGE, 2) for _ in phases]),
        *per_phase(VOLTAGE, "V", [SUPPLY_VOLTAGE for _ in phases], to_neutral=True),
    ]


class BenchRig:
    """Build it before the ``ConnectorHardware`` objects, on the same ``MockFactory``."""

    def __init__(
        self,
        factory: MockFactory,
        connectors: Sequence[ConnectorConfig],
        config: RigConfig,
        *,
        loop: asyncio.AbstractEventLoop,
        adc: AdcConfig | None = None,
    ) -> None:
        self._adc = (
            _SimulatedAdc(factory, (adc or AdcConfig()).chip)
            if any(c.adc_channels for c in connectors)
            else None
        )
        self._connectors = [_Connector(factory, c, config, loop, self._adc) for c in connectors]

    def _connector(self, connector_id: int) -> _Connector:
        if not 1 <= connector_id <= len(self._connectors):
            raise KeyError(f"the rig has no connector {connector_id}")
        return self._connectors[connector_id - 1]

    def plug(self, connector_id: int, cable_rating: int | str = 32) -> None:
        """A cable in the socket, and a vehicle at its other end (B), whose cable is coded for
        ``cable_rating`` amperes (13, 20, 32, 63), or ``"bad"``: a resistor in no band."""
        connector = self._connector(connector_id)
        ohms = BAD_CABLE_OHMS if cable_rating == "bad" else nominal_ohms(int(cable_rating))
        if connector.vehicle is not None:
            connector.vehicle.plug(ohms)
        connector.cable.set(present=True)

    def unplug(self, connector_id: int) -> None:
        connector = self._connector(connector_id)
        connector.cable.set(present=False)
        if connector.vehicle is not None:
            connector.vehicle.unplug()

    def ev(self, connector_id: int, state: str) -> None:
        """Set the vehicle's side of the pilot by hand: "A" (the cable pulled out at the
        vehicle, still in the socket), "B", "C", "D" or "E"."""
        vehicle = self._connector(connector_id).vehicle
        if vehicle is None:
            raise KeyError(f"connector {connector_id} has no control pilot")
        vehicle.set_state(PilotState(state))

    def vehicle_state(self, connector_id: int) -> str | None:
        """The simulated vehicle's state; None where no pilot is wired."""
        vehicle = self._connector(connector_id).vehicle
        if vehicle is None:
            return None
        return vehicle.state.value if vehicle.plugged else PilotState.A.value

    def bounce(self, connector_id: int, *, present: bool, edges: int = 7) -> None:
        """Contact bounce on the proximity input, settling at `present` (with the vehicle
        behind the cable, as :meth:`plug` and :meth:`unplug` leave it)."""
        connector = self._connector(connector_id)
        connector.cable.bounce(present, edges)
        vehicle = connector.vehicle
        if vehicle is not None and present != vehicle.plugged:
            if present:
                vehicle.plug(nominal_ohms(32))
            else:
                vehicle.unplug()

    def set_fault(self, connector_id: int, fault: RigFault) -> None:
        self._connector(connector_id).set_fault(fault)

    def fault(self, connector_id: int) -> RigFault:
        return self._connector(connector_id).fault

    def rcd_tripped(self, connector_id: int) -> bool | None:
        """The simulated residual-current monitor's output; None where none is wired."""
        rcd = self._connector(connector_id).rcd
        return None if rcd is None else rcd.tripped

    def lock_engaged(self, connector_id: int) -> bool:
        """The physical latch, whatever the feedback wire says."""
        latch = self._connector(connector_id).latch
        return latch is not None and latch.engaged

    def meter(self, connector_id: int, *, poll_interval: float = 1.0) -> SimulatedMeter:
        """Counts (and draws ``power_w``) while the contactor output is on."""
        connector = self._connector(connector_id)
        return SimulatedMeter(connector.contactor, connector.meter_bus, poll_interval)

    def close(self) -> None:
        for connector in self._connectors:
            connector.close()
        if self._adc is not None:
            self._adc.close()
