"""One connector's hardware behind the two interlocks of IEC 61851-1.

The lock is engaged before the contactor closes, and released only while the contactor is
commanded open and its aux contact confirms it. Lock, unlock and close take one asyncio lock,
so that each check and the action it allows cannot be split by another command; opening the
contactor never waits for anything.

Energy stops in the hardware itself, never behind work queued on the event loop: whenever the
reading of the pins says so (:attr:`ConnectorReading.stops_charging`, the one rule), the contactor
is opened by :meth:`ConnectorHardware.supervise`, which runs in each lock-feedback, aux-contact
and residual-current edge's own handler before the loop hears of the edge, on the loop after
every input change, and from a loop timer every second (a pin that fails to read raises no
edge). The timer is a plain callback, not a task: it runs in the first loop iteration after it is
due, with no task step to wait for. The charge point learns of the trip afterwards
(:attr:`ConnectorHardware.tripped`) and ends the transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cp_pi.config import ConnectorConfig
from cp_pi.core.healing import heal_pauses
from cp_pi.core.pilot import PilotReading, PilotState, PpFault, allows_energy
from cp_pi.core.reading import (
    ConnectorReading,
    ContactorOutcome,
    ContactorResult,
    LockOutcome,
    LockPosition,
    LockResult,
    PinSnapshot,
    assess,
    energised_without_cable,
)
from cp_pi.hardware.contactor import Contactor
from cp_pi.hardware.inputs import PinReadError, ProximitySensor
from cp_pi.hardware.lock import LockActuator
from cp_pi.hardware.meter import EnergyMeter
from cp_pi.hardware.pilot import ControlPilot
from cp_pi.hardware.rcd import ResidualCurrentMonitor

logger = logging.getLogger("cp_pi.hardware")

#: Seconds between two looks at the pins while the contactor is closed.
SUPERVISION_PERIOD = 1.0


class Part(Protocol):
    """What every part of a connector offers: its pins, and a way to give them back."""

    @property
    def pins(self) -> dict[str, int]:
        """``{role: BCM pin}``: each pin this part claims, named by its key in the config."""
        ...

    def release(self) -> None:
        """Outputs off, then give the pins back."""
        ...


@dataclass(frozen=True)
class ConnectorParts:
    """The ready-made parts of one connector (see :mod:`cp_pi.hardware.parts`).

    The lock actuator carries its feedback switch, the contactor its aux contact; a fixed cable
    has no lock. The connector that receives them owns them: it closes them all.
    """

    proximity: ProximitySensor
    lock: LockActuator | None
    contactor: Contactor
    meter: EnergyMeter
    rcd: ResidualCurrentMonitor | None = None
    pilot: ControlPilot | None = None

    def all(self) -> list[Part]:
        """Every part with pins, in the order of the wiring table."""
        lock: list[Part] = [] if self.lock is None else [self.lock, self.lock.feedback]
        rcd: list[Part] = [] if self.rcd is None else [self.rcd]
        pilot: list[Part] = [] if self.pilot is None else [self.pilot]
        return [self.proximity, *lock, self.contactor, *rcd, *pilot]


class ConnectorHardware:
    """One connector built from its parts: the interlocks and the supervision around them."""

    def __init__(
        self,
        connector_id: int,
        config: ConnectorConfig,
        parts: ConnectorParts,
        *,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.connector_id = connector_id
        self.parts = parts
        self.meter = parts.meter
        self.has_lock = parts.lock is not None
        #: Called on the loop thread after any input changes; may be set after construction.
        self.on_change = on_change
        self._busy = asyncio.Lock()
        #: The installer's self-test closed the contactor of an empty socket on purpose.
        self._empty_socket_test = False
        self._loop = loop
        self._debounce = config.proximity_debounce
        lock = config.lock
        self._heal_pauses = (max(lock.heal_pause, lock.pause), lock.heal_pause_max)
        self._settling: asyncio.TimerHandle | None = None
        self._proximity = parts.proximity
        self._proximity.on_change = self._proximity_changed
        self._lock = parts.lock
        if self._lock is not None:
            self._lock.feedback.on_change = self._input_changed
            self._lock.feedback.on_edge = self.supervise
        self._contactor = parts.contactor
        self._contactor.on_change = self._input_changed
        self._contactor.on_edge = self.supervise
        self._cable = self._proximity.cable_present  # a cable in at start-up fires no event
        self._rcd = parts.rcd
        #: A trip (or a failed self-test) holds until the module is healthy and the cable out.
        self._rcd_latched = False
        #: The self-test trips the module on purpose: those trips latch nothing.
        self._rcd_testing = False
        if self._rcd is not None:
            self._rcd.on_change = self._input_changed
            self._rcd.on_edge = self.supervise
        self._pilot = parts.pilot
        self._ventilation = config.pilot is not None and config.pilot.ventilation
        #: The tethered cable's rating, where no PP resistor tells it.
        self._fixed_cable_rating = config.cable_rating
        self.max_current = config.max_current
        #: Seconds a start waits for the vehicle to ask for energy.
        self.ev_wait = 0.0 if config.pilot is None else config.pilot.ev_wait
        #: Set on every input change: what a wait for the vehicle listens to.
        self._moved: asyncio.Event | None = None
        if self._pilot is not None:
            self._pilot.on_edge = self.supervise
            self._pilot.on_change = self._input_changed
            contactor = self._contactor
            self._pilot.energised = lambda: contactor.commanded_closed
            self._pilot.start()
        self._supervision = loop.call_later(SUPERVISION_PERIOD, self._supervise_periodically)

    @property
    def pins(self) -> dict[str, int]:
        """``{role: BCM pin}`` of every part: the inventory the configuration checks."""
        pins: dict[str, int] = {}
        for part in self.parts.all():
            pins |= part.pins
        return pins

    def _input_changed(self) -> None:
        if self._moved is not None:
            self._moved.set()
        self.supervise()
        if self.on_change is not None:
            self.on_change()

    def supervise(self) -> bool:
        """Open the contactor here and now when the pins say energy must stop; True if it did.

        Synchronous and safe from any thread (a pin driver's edge handler calls it); the reason
        stays in :attr:`tripped` for the charge point to act on.
        """
        if not self._contactor.commanded_closed:
            return False
        snapshot = self.snapshot()
        if energised_without_cable(snapshot) and not self._empty_socket_test:
            # Not a fault of the lock chain: the cable's own path ends or suspends the
            # transaction; the trip only makes sure the empty socket is not live meanwhile.
            if not self._contactor.trip(None):
                return False
            logger.warning(
                "connector %d: contactor closed with no cable: contactor opened", self.connector_id
            )
            return True
        reading = assess(snapshot)
        if reading.stops_charging:
            if not self._contactor.trip(reading):
                return False
            logger.error(
                "connector %d: %s with the contactor closed: contactor opened",
                self.connector_id,
                reading.value,
            )
            return True
        if self.energy_allowed():
            return False
        # The vehicle left C2/D2 (or the wave stopped): an ordinary event, no fault; the charge
        # point suspends or ends the transaction as the pilot's new state says.
        if not self._contactor.trip(None):
            return False
        logger.info(
            "connector %d: control pilot %s: contactor opened", self.connector_id, self.pilot_state
        )
        return True

    # -- the control pilot and the proximity pilot ----------------------------------------------

    @property
    def has_pilot(self) -> bool:
        return self._pilot is not None

    @property
    def pilot_reading(self) -> PilotReading | None:
        """The vehicle's state, debounced; None without a pilot."""
        return None if self._pilot is None else self._pilot.reading

    @property
    def pilot_state(self) -> str | None:
        return None if self._pilot is None else self._pilot.reading.state.value

    @property
    def pilot_duty(self) -> float | None:
        """The duty on offer, percent; None with no wave (steady +12 V, or F)."""
        if self._pilot is None or not self._pilot.output.pwm_on:
            return None
        return self._pilot.output.duty

    @property
    def pwm_on(self) -> bool:
        return self._pilot is not None and self._pilot.output.pwm_on

    @property
    def ev_connected(self) -> bool:
        """A vehicle is at the cable's other end: the pilot reads B, C, D or E (without a pilot,
        the proximity input is all there is)."""
        if self._pilot is None:
            return self._cable
        if self._pilot.output.unavailable or self._pilot.reading.state is PilotState.F:
            return self._cable  # F (ours, or still settling from it) hides the vehicle
        return self._pilot.reading.state in (
            PilotState.B,
            PilotState.C,
            PilotState.D,
            PilotState.E,
        )

    @property
    def ev_paused(self) -> bool:
        """The wave offers current and the vehicle does not ask for it (B2)."""
        reading = self.pilot_reading
        return self.pwm_on and reading is not None and reading.state is PilotState.B

    @property
    def ev_wants_energy(self) -> bool:
        """The vehicle asks for energy: C (D where ventilation is present)."""
        reading = self.pilot_reading
        if reading is None:
            return True
        return reading.state is PilotState.C or (
            reading.state is PilotState.D and self._ventilation
        )

    @property
    def cable_rating_a(self) -> float | None:
        """The cable's rating in amperes: its PP resistor, else the configured tethered cable."""
        if self._pilot is not None and self._pilot.has_pp:
            cable = self._pilot.cable
            return float(cable) if isinstance(cable, int) else None
        return self._fixed_cable_rating

    @property
    def cable_coding(self) -> int | PpFault | None:
        """The PP resistor's word: a rating, "no plug" or "invalid"; None without a PP input."""
        if self._pilot is None or not self._pilot.has_pp:
            return None
        return self._pilot.cable

    def _cable_ok(self) -> bool:
        coding = self.cable_coding
        return coding is None or isinstance(coding, int)

    def energy_allowed(self) -> bool:
        """The pilot's interlock: the contactor may be closed only in C2 (D2 with ventilation),
        with the diode answering and a valid cable coding. True without a pilot."""
        pilot = self._pilot
        if pilot is None:
            return True
        if pilot.unreadable:
            return False
        return allows_energy(
            pilot.reading,
            pwm_on=pilot.output.pwm_on,
            ventilation=self._ventilation,
            cable_ok=self._cable_ok(),
        )

    def offer(self, amps: float | None) -> None:
        """Offer ``amps`` on the pilot (None or below 6 A: no wave); the contactor opens here
        and now when the wave stops under it."""
        if self._pilot is None:
            return
        self._pilot.output.offer(amps)
        self._pilot.look_now()
        self.supervise()

    def set_unavailable(self, unavailable: bool) -> None:
        """Drive the pilot to -12 V (state F) while the connector cannot be used."""
        if self._pilot is None or self._pilot.output.unavailable == unavailable:
            return
        self._pilot.output.set_unavailable(unavailable)
        self._pilot.look_now()
        self.supervise()

    def _pilot_fault(self) -> str | None:
        pilot = self._pilot
        if pilot is None:
            return None
        if pilot.unreadable:
            return "control pilot unreadable (ADC)"
        if pilot.output.unavailable:
            return None  # the level is the charger's own -12 V
        return pilot.reading.fault

    def fault_info(self) -> str | None:
        """The words a StatusNotification's info gives a pilot or cable fault (max 50 chars)."""
        fault = self._pilot_fault()
        if fault is not None:
            return fault
        if self.cable_coding is PpFault.INVALID and self._pilot is not None:
            ohms = self._pilot.pp_ohms_seen
            return f"PP resistor {ohms:.0f} ohm: in no cable band"
        return None

    async def wait_for_energy(self, timeout: float) -> bool:
        """Wait, change by change, until the pilot allows energy; False after ``timeout``."""
        deadline = self._loop.time() + timeout
        while not (self.energy_allowed() and self.ev_wants_energy):
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self._moved = asyncio.Event()
            try:
                await asyncio.wait_for(self._moved.wait(), remaining)
            except TimeoutError:
                return self.energy_allowed()
            finally:
                self._moved = None
        return True

    def _supervise_periodically(self) -> None:
        self._supervision = self._loop.call_later(SUPERVISION_PERIOD, self._supervise_periodically)
        if self.supervise():
            self._input_changed()

    @property
    def tripped(self) -> ConnectorReading | None:
        """The reading that opened the contactor on its own, until the next close or until
        :meth:`acknowledge_trip`."""
        return self._contactor.tripped

    def acknowledge_trip(self) -> ConnectorReading | None:
        """The trip, taken note of (the charge point ended the transaction for it)."""
        tripped, self._contactor.tripped = self._contactor.tripped, None
        return tripped

    def _proximity_changed(self) -> None:
        """Count a new level only once it held for the debounce time (done in software because
        mock pins do not simulate gpiozero's ``bounce_time``, and one rule should hold on both)."""
        if self._settling is not None:
            self._settling.cancel()
        self._settling = self._loop.call_later(self._debounce, self._proximity_settled)

    def _proximity_settled(self) -> None:
        self._settling = None
        try:
            cable = self._proximity.cable_present
        except PinReadError:  # keep the last good level
            logger.exception("connector %d: proximity unreadable", self.connector_id)
            return
        if cable != self._cable:
            self._cable = cable
            self._input_changed()

    @property
    def cable_present(self) -> bool:
        """Debounced: what the proximity input said for at least ``proximity_debounce``."""
        return self._cable

    @property
    def lock_position(self) -> LockPosition | None:
        return None if self._lock is None else self._lock.position

    @property
    def contactor_closed(self) -> bool:
        """What was commanded; the aux contact's word is in :meth:`reading`."""
        return self._contactor.commanded_closed

    @property
    def lock_drives(self) -> int:
        return 0 if self._lock is None else self._lock.drives

    def heal_pauses(self) -> Iterator[float]:
        """The pauses before each retry to bring a faulted lock back: growing, and never
        shorter than the coil's own rest between drives."""
        return heal_pauses(*self._heal_pauses)

    def snapshot(self) -> PinSnapshot:
        lock = self._lock
        contactor = self._contactor
        try:
            _ = self._proximity.cable_present  # read for its health; the level used is debounced
            cable_present = self._cable
            lock_feedback = None if lock is None else lock.position
            contactor_feedback = contactor.feedback_closed
            rcd_tripped = self._rcd_state(cable_present)
            read_error = False
        except PinReadError:  # a verdict is still owed, so the error becomes one
            logger.exception("connector %d: input unreadable", self.connector_id)
            cable_present, lock_feedback, contactor_feedback = False, None, None
            rcd_tripped = self._rcd_latched
            read_error = True
        return PinSnapshot(
            cable_present=cable_present,
            lock_feedback=lock_feedback,
            lock_commanded=None if lock is None else lock.commanded,
            lock_moving=lock is not None and lock.moving,
            lock_drive_failed=lock is not None and lock.drive_failed,
            contactor_commanded_closed=contactor.commanded_closed,
            contactor_feedback_closed=contactor_feedback,
            contactor_settling=contactor.settling,
            read_error=read_error,
            rcd_tripped=rcd_tripped,
            pilot_fault=self._pilot_fault(),
            cable_coding_invalid=self.cable_coding is PpFault.INVALID,
        )

    def _rcd_state(self, cable_present: bool) -> bool:
        """Whether the residual-current monitor holds the connector tripped: a trip latches at
        once; it clears only once the module reads healthy and the cable has been removed, so
        that the same vehicle is not energised again without someone looking at it."""
        if self._rcd is None:
            return False
        live = self._rcd.tripped
        if live and not self._rcd_testing and not self._rcd_latched:
            self._rcd_latched = True
            logger.error("connector %d: residual current monitor tripped", self.connector_id)
        elif self._rcd_latched and not live and not cable_present:
            self._rcd_latched = False
            logger.warning(
                "connector %d: residual current monitor healthy and cable removed: cleared",
                self.connector_id,
            )
        return self._rcd_latched

    async def rcd_self_test(self) -> bool:
        """Trip the residual-current monitor through its test input and see it recover, before
        a session; True when it did (or there is no test input). A failure holds the connector
        tripped (Faulted, GroundFailure) until it is healthy again and the cable removed."""
        if self._rcd is None or not self._rcd.can_self_test:
            return True
        async with self._busy:
            if self._contactor.commanded_closed:  # a test trip must never cut a running charge
                return True
            self._rcd_testing = True
            try:
                failure = await self._rcd.self_test()
            finally:
                self._rcd_testing = False
            if failure is None:
                logger.info("connector %d: residual current self-test passed", self.connector_id)
                return True
            self._rcd_latched = True
            logger.error(
                "connector %d: residual current self-test failed: %s", self.connector_id, failure
            )
        self._input_changed()
        return False

    def reading(self) -> ConnectorReading:
        return assess(self.snapshot())

    async def lock(self) -> LockResult:
        if self._lock is None:
            return _refused("the connector has no lock")
        async with self._busy:
            return await self._lock.drive(LockPosition.ENGAGED)

    async def unlock(self) -> LockResult:
        """Release the lock, unless the cable may be live."""
        if self._lock is None:
            return _refused("the connector has no lock")
        async with self._busy:
            refusal = self._unlock_refusal()
            if refusal is not None:
                logger.warning(
                    "connector %d: unlock refused: %s", self.connector_id, refusal.refused
                )
                return refusal
            return await self._lock.drive(LockPosition.RELEASED)

    def _unlock_refusal(self) -> LockResult | None:
        if self._contactor.commanded_closed:
            return _refused("the contactor is closed")
        try:
            aux_closed = self._contactor.feedback_closed
        except PinReadError:  # unknown counts as live
            logger.exception("connector %d: contactor aux contact unreadable", self.connector_id)
            return _refused(
                "the contactor's aux contact is unreadable", ConnectorReading.PIN_READ_ERROR
            )
        if aux_closed:
            return _refused(
                "the contactor's aux contact reads closed", ConnectorReading.CONTACTOR_WELDED
            )
        return None

    async def close_contactor(self, *, empty_socket_test: bool = False) -> ContactorResult:
        """Close the contactor once the lock holds the plug; not ``ok`` when refused or
        unconfirmed.

        A socket with no cable in it is never energised: the cable is looked at here, at the
        moment of closing, whatever the caller saw before. Only the installer's self-test closes
        an empty socket on purpose (``empty_socket_test``), since no vehicle may be connected
        while it cycles the contactor.
        """
        async with self._busy:
            if self._lock is not None and not self._lock_engaged(self._lock):
                logger.warning(
                    "connector %d: contactor not closed: the lock is not engaged", self.connector_id
                )
                return _not_closed("the lock is not engaged")
            if not empty_socket_test and not self.cable_in:
                logger.warning("connector %d: contactor not closed: no cable", self.connector_id)
                return _not_closed("no cable")
            if not empty_socket_test and not self.energy_allowed():
                logger.warning(
                    "connector %d: contactor not closed: control pilot %s, cable %s",
                    self.connector_id,
                    self.pilot_state,
                    self.cable_coding,
                )
                return _not_closed("the control pilot does not allow energy")
            if self._rcd_holds_open():
                logger.warning(
                    "connector %d: contactor not closed: the residual current monitor is tripped",
                    self.connector_id,
                )
                return _not_closed("the residual current monitor is tripped")
            self._empty_socket_test = empty_socket_test
            return await self._contactor.close()

    @property
    def cable_in(self) -> bool:
        """Both the debounced and the live proximity level say a cable is in: what energy
        needs, where :attr:`cable_present` (debounced only) is what statuses need."""
        try:
            live = self._proximity.cable_present
        except PinReadError:  # unknown counts as no cable
            logger.exception("connector %d: proximity unreadable", self.connector_id)
            return False
        return live and self._cable

    def _rcd_holds_open(self) -> bool:
        if self._rcd is None:
            return False
        try:
            return self._rcd_state(self._cable) or self._rcd.tripped
        except PinReadError:  # unknown counts as tripped
            logger.exception("connector %d: residual current input unreadable", self.connector_id)
            return True

    def _lock_engaged(self, lock: LockActuator) -> bool:
        try:
            return lock.engaged
        except PinReadError:  # unknown counts as not engaged
            logger.exception("connector %d: lock feedback unreadable", self.connector_id)
            return False

    async def open_contactor(self) -> ContactorResult:
        return await self._contactor.open()

    async def confirm_contactor_open(self) -> ContactorResult:
        """The aux contact's word once the output is off: ``CONTACTOR_WELDED`` (and logged)
        when it stays closed."""
        return await self._contactor.confirm_open()

    def outputs_off(self) -> None:
        if self._lock is not None:
            self._lock.outputs_off()
        self._contactor.outputs_off()
        if self._rcd is not None:
            self._rcd.outputs_off()
        if self._pilot is not None:
            self._pilot.outputs_off()

    def close(self) -> None:
        self._supervision.cancel()
        if self._settling is not None:
            self._settling.cancel()
        self.outputs_off()
        self.meter.close()
        for part in reversed(self.parts.all()):
            part.release()


def _refused(why: str, fault: ConnectorReading | None = None) -> LockResult:
    return LockResult(LockOutcome.FAILED, attempts=0, fault=fault, refused=why)


def _not_closed(why: str) -> ContactorResult:
    return ContactorResult(ContactorOutcome.FAILED, refused=why)
