"""The control pilot and the proximity pilot as hardware parts: a PWM output and an SPI ADC.

The pilot's wave comes from a PWM pin through a +-12 V driver stage: the pin's duty is the time
the pilot spends at +12 V, so a steady high pin (1.0) is +12 V with no wave (x1), a running wave
offers current by its duty, and a low pin is -12 V (state F, "not available"), which is also
where :func:`cp_pi.hardware.safety.all_outputs_off` leaves it.

Python cannot sample in phase with a 1 kHz wave, so two peak detectors hold the wave's high and
low levels for the ADC (an MCP3008 or MCP3208 on SPI0, shared by every connector). A thread of
its own samples them: slowly while no energy can flow (``sample_idle``), quickly while it can
or while a change is being confirmed (``sample_active``). The sampler runs the connector's safety
check in its own thread, before the loop hears of a new state, as a pin edge does: a vehicle
leaving C opens the contactor without waiting for the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from gpiozero import MCP3008, MCP3208, Device, Factory, PWMOutputDevice
from gpiozero.pins.mock import MockFactory

from cp_pi.config import PILOT_PWM, SPI_PINS, AdcChip, PilotConfig, PpConfig
from cp_pi.core.pilot import (
    PilotDebounce,
    PilotReading,
    PilotState,
    PpFault,
    cable_rating,
    cp_volts,
    duty_percent,
    pp_ohms,
)
from cp_pi.hardware import safety
from cp_pi.hardware.inputs import PinReadError, call_on_loop

logger = logging.getLogger("cp_pi.hardware")

#: The pilot's wave, hertz (IEC 61851-1).
PILOT_FREQUENCY = 1000

#: The diode check's low level is read at every this many samples, and held in between.
LOW_EVERY = 4

#: Seconds between the samples that confirm a new pilot state (the debounce's samples).
CONFIRM_PERIOD = 0.001

#: Seconds the low-level peak detector takes to follow a wave that just started: the diode is
#: not judged before.
LOW_SETTLE = 0.05

#: gpiozero's software SPI bus is shared by pin names across every pin factory of the process:
#: two stations on two mock factories would read each other's ADC. One factory at a time.
_adc_factories: dict[int, int] = {}


class Adc:
    """The station's SPI ADC: one gpiozero device per channel in use, on SPI0 CE0.

    Every channel's device is made at once, here: gpiozero shares the SPI interface between
    them by pin names, and a closed interface that the garbage collector finalises later drops
    the share of whatever interface holds those names by then, so no device is made after
    another station's may have been closed. Each pilot that reads the ADC holds it
    (:meth:`hold`); the last one to let go closes it.
    """

    def __init__(self, chip: AdcChip, channels: Iterable[int], *, pin_factory: Factory) -> None:
        others = [key for key in _adc_factories if key != id(pin_factory)]
        if others:
            raise ValueError("another station's ADC is open in this process: one at a time")
        if isinstance(pin_factory, MockFactory) and Device.pin_factory is None:
            # gpiozero's software SPI bus (what mock pins use) asks for a default factory even
            # though its pins come from the one given.
            Device.pin_factory = pin_factory
        kind = MCP3208 if chip is AdcChip.MCP3208 else MCP3008
        self._devices: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._holders = 0
        self._closed = False
        collecting = gc.isenabled()
        gc.disable()
        try:
            for channel in sorted(set(channels)):
                self._devices[channel] = kind(
                    channel=channel,
                    clock_pin=SPI_PINS["adc.clock"],
                    mosi_pin=SPI_PINS["adc.mosi"],
                    miso_pin=SPI_PINS["adc.miso"],
                    select_pin=SPI_PINS["adc.select"],
                    pin_factory=pin_factory,
                )
        except BaseException:
            self._close_devices()
            raise
        finally:
            if collecting:
                gc.enable()
        self._factory_key = id(pin_factory)
        _adc_factories[self._factory_key] = _adc_factories.get(self._factory_key, 0) + 1

    @property
    def pins(self) -> dict[str, int]:
        return dict(SPI_PINS)

    def hold(self) -> None:
        with self._lock:
            self._holders += 1

    def let_go(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders <= 0
        if last:
            self.release()

    def read(self, channel: int) -> float:
        """The channel's level as a fraction of the reference, 0.0 .. 1.0."""
        with self._lock:
            device = self._devices.get(channel)
            if device is None:
                raise PinReadError(f"ADC channel {channel} unreadable: not opened (or closed)")
            try:
                return float(device.value)
            # A backend's own error type (spidev's OSError, PinError...) stops here.
            except Exception as error:
                raise PinReadError(f"ADC channel {channel} unreadable: {error}") from error

    def _close_devices(self) -> None:
        for device in self._devices.values():
            device.close()
        self._devices.clear()

    def release(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_devices()
        count = _adc_factories.get(self._factory_key, 0) - 1
        if count > 0:
            _adc_factories[self._factory_key] = count
        else:
            _adc_factories.pop(self._factory_key, None)


class PilotOutput:
    """The PWM pin that drives the pilot's +-12 V stage."""

    def __init__(self, pin: int, *, pin_factory: Factory) -> None:
        self._pin = pin
        self._device = PWMOutputDevice(
            pin, frequency=PILOT_FREQUENCY, initial_value=1.0, pin_factory=pin_factory
        )
        #: The duty on offer, percent; None: no wave (steady +12 V).
        self.duty: float | None = None
        #: Driven to -12 V (state F): the connector is not available.
        self.unavailable = False
        #: When the wave last started (monotonic seconds): the low-level detector needs a
        #: moment to follow it.
        self.wave_since = 0.0
        #: The safety net switched the outputs off (SIGTERM, exit): -12 V for good.
        self._held_off = False
        self._safety = _HeldOff(self)
        safety.register(self._safety, {PILOT_PWM: pin})

    @property
    def pins(self) -> dict[str, int]:
        return {PILOT_PWM: self._pin}

    @property
    def pwm_on(self) -> bool:
        return self.duty is not None and not self.unavailable and not self._held_off

    @property
    def closed(self) -> bool:
        return bool(self._device.closed)

    def offer(self, amps: float | None) -> None:
        """The wave that offers ``amps`` (the standard's duty), or none below 6 A."""
        was_on = self.pwm_on
        self.duty = duty_percent(amps)
        if self.pwm_on and not was_on:
            self.wave_since = time.monotonic()
        self._show()

    def set_unavailable(self, unavailable: bool) -> None:
        was_on = self.pwm_on
        self.unavailable = unavailable
        if self.pwm_on and not was_on:
            self.wave_since = time.monotonic()
        self._show()

    def _show(self) -> None:
        if self.unavailable or self._held_off:
            value = 0.0
        elif self.duty is None:
            value = 1.0
        else:
            value = self.duty / 100
        if self._device.value != value:
            self._device.value = value

    def outputs_off(self) -> None:
        """-12 V: a vehicle stops at once and sees a charger that is not available (the
        charge point drives it again when it next says what the pilot shows)."""
        self.duty = None
        self._device.off()

    def hold_off(self) -> None:
        """-12 V, and no wave again from this output: the process is stopping."""
        self._held_off = True
        self.outputs_off()

    def release(self) -> None:
        self.hold_off()
        safety.unregister(self._safety)
        self._device.close()


class _HeldOff:
    """What the safety net switches off: the pilot's output, held at -12 V from then on, so
    that no later look at the connector's state turns the wave (and so the contactor) back on."""

    def __init__(self, output: PilotOutput) -> None:
        self._output = output

    def off(self) -> None:
        self._output.hold_off()

    @property
    def closed(self) -> bool:
        return self._output.closed


class ControlPilot:
    """The pilot of one connector: its output, its two ADC channels, its PP channel, and the
    sampler thread that reads them.

    ``on_edge`` runs on the sampler's thread as soon as the debounced reading changes (the
    safety check); ``on_change`` runs on the loop afterwards, like an input pin's handlers.
    """

    def __init__(
        self,
        config: PilotConfig,
        output: PilotOutput,
        adc: Adc,
        *,
        pp: PpConfig | None,
        loop: asyncio.AbstractEventLoop,
        name: str = "pilot",
    ) -> None:
        self.config = config
        self.output = output
        self._adc = adc
        self._pp = pp
        self._loop = loop
        self.on_edge: Callable[[], object] | None = None
        self.on_change: Callable[[], object] | None = None
        #: True while energy can flow (the contactor is closed): sample quickly.
        self.energised: Callable[[], bool] = lambda: False
        self._debounce = PilotDebounce(config.debounce)
        #: The ADC could not be read: the pilot's word is unknown, so it allows no energy.
        self.unreadable = False
        #: The cable's coding: its rating in amperes, or why there is none.
        self.cable: int | PpFault = PpFault.NO_PLUG
        #: The PP resistance last read, ohms (what an invalid coding is reported as).
        self.pp_ohms_seen = math.inf
        self._cable_pending: tuple[int | PpFault, int] = (self.cable, 0)
        self._pp_due = 0.0
        self._low: float | None = None
        self._low_age = LOW_EVERY
        self._wake = threading.Event()
        self._stopping = False
        adc.hold()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def pins(self) -> dict[str, int]:
        return self.output.pins

    @property
    def channels(self) -> dict[str, int]:
        """``{role: ADC channel}`` this part reads."""
        channels = {
            "pilot.high_channel": self.config.high_channel,
            "pilot.low_channel": self.config.low_channel,
        }
        if self._pp is not None:
            channels["pp.channel"] = self._pp.channel
        return channels

    @property
    def reading(self) -> PilotReading:
        return self._debounce.reading

    @property
    def has_pp(self) -> bool:
        return self._pp is not None

    def start(self) -> None:
        self._thread.start()

    def look_now(self) -> None:
        """Sample at once and quickly (the wave changed, or energy may flow)."""
        self._wake.set()

    def levels(self) -> tuple[float, float | None]:
        """The CP high level and, while the wave runs, its low level, volts (one read each)."""
        high = cp_volts(self._adc.read(self.config.high_channel))
        low = cp_volts(self._adc.read(self.config.low_channel)) if self.output.pwm_on else None
        return high, low

    def pp_resistance(self) -> float:
        if self._pp is None:
            return math.inf
        return pp_ohms(self._adc.read(self._pp.channel))

    def _sample(self) -> bool:
        """One look at the levels; True when the debounced reading (or the cable) changed.

        The high level is read at every sample: it tells a vehicle leaving C. The low level
        (the diode check) is read at every :data:`LOW_EVERY`-th one and held in between, and
        the PP resistor only while a vehicle is there: each read costs an SPI transfer.
        """
        try:
            high = cp_volts(self._adc.read(self.config.high_channel))
            settling = time.monotonic() - self.output.wave_since < LOW_SETTLE
            if not self.output.pwm_on or settling:
                self._low, self._low_age = None, LOW_EVERY
            elif self._low is None or self._low_age >= LOW_EVERY:
                self._low = cp_volts(self._adc.read(self.config.low_channel))
                self._low_age = 0
            self._low_age += 1
            changed = self._debounce.feed(high, self._low)
            now = time.monotonic()
            vehicle = self.reading.state is not PilotState.A or self._debounce.settling
            if self._pp is not None and vehicle and now >= self._pp_due:
                self._pp_due = now + self.config.sample_idle
                self.pp_ohms_seen = self.pp_resistance()
                changed = self._feed_cable(cable_rating(self.pp_ohms_seen)) or changed
        except PinReadError:
            if not self.unreadable:
                logger.exception("control pilot unreadable")
                self.unreadable = True
                return True
            return False
        if self.unreadable:
            self.unreadable = False
            logger.warning("control pilot readable again")
            return True
        return changed

    def _feed_cable(self, cable: int | PpFault) -> bool:
        if cable == self.cable:
            self._cable_pending = (cable, 0)
            return False
        pending, count = self._cable_pending
        count = count + 1 if pending == cable else 1
        self._cable_pending = (cable, count)
        if count < self.config.debounce:
            self._pp_due = 0.0  # confirm at the next sample
            return False
        self.cable = cable
        return True

    def _period(self) -> float:
        """Slowly with nothing to watch; quickly while energy can flow; at once (every
        :data:`CONFIRM_PERIOD`) while a new state is being confirmed, so that the debounce adds
        a couple of milliseconds to a vehicle leaving C, not a couple of periods."""
        if self._debounce.settling:
            return min(CONFIRM_PERIOD, self.config.sample_active)
        quick = self.output.pwm_on or self.energised() or self._cable_pending[1] > 0
        return self.config.sample_active if quick else self.config.sample_idle

    def _run(self) -> None:
        while not self._stopping:
            try:
                self._look()
            except RuntimeError:  # the loop closed under a late sample: the station is gone
                if self._loop.is_closed():
                    return
                logger.exception("control pilot sampler")
            except Exception:  # a sampler that dies would leave the contactor unwatched
                logger.exception("control pilot sampler")
            self._wake.wait(self._period())
            self._wake.clear()

    def _look(self) -> None:
        if self._sample():
            try:
                if self.on_edge is not None:
                    self.on_edge()
            finally:
                call_on_loop(self._loop, self._changed)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def outputs_off(self) -> None:
        self.output.outputs_off()

    def release(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        self.output.release()
        self._adc.let_go()
