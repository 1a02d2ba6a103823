"""Socket lock actuators: short, capped, spaced pulses judged by the feedback switch alone.

Lock coils and motors are rated for short activations with a long rest in between (HARTING:
at most 3 s on, a pause of about eight times the activation). So each drive is an awaited pulse
that is capped at :data:`~cp_pi.config.MAX_DRIVE_TIME` whatever the configuration says, switches
off in a ``finally`` (a cancelled drive included), waits out the configured pause since the
previous pulse (never less than that pulse lasted: at most 50 % duty, even with ``pause = 0``),
and never overlaps another drive of the same actuator. gpiozero's ``blink(n=1)``
would pulse in a thread of its own, but stopped early it can leave the output high, hence the
awaited pulse here.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod

from gpiozero import DigitalOutputDevice, Factory, Motor

from cp_pi.config import LOCK_DRIVE, MAX_DRIVE_TIME, UNLOCK_DRIVE, LockConfig, LockKind
from cp_pi.core.reading import ConnectorReading, LockOutcome, LockPosition, LockResult
from cp_pi.hardware import safety
from cp_pi.hardware.inputs import LockFeedback, PinReadError

logger = logging.getLogger("cp_pi.hardware")

_REACHED = {LockPosition.ENGAGED: LockOutcome.LOCKED, LockPosition.RELEASED: LockOutcome.UNLOCKED}


class LockActuator(ABC):
    """What every lock shares: drive sequencing, retries and the state behind a ``PinSnapshot``."""

    def __init__(self, connector_id: int, config: LockConfig, feedback: LockFeedback) -> None:
        self._connector_id = connector_id
        self._config = config
        self._feedback = feedback
        self._serial = asyncio.Lock()
        self._last_pulse_end = -math.inf
        self._last_on_time = 0.0
        self.commanded: LockPosition = feedback.position
        self.moving = False
        self.drive_failed = False
        self.drives = 0

    @property
    def position(self) -> LockPosition:
        """Where the feedback says the lock is."""
        return self._feedback.position

    @property
    def engaged(self) -> bool:
        """Safe to close the contactor: engaged as commanded, confirmed, and not about to move."""
        return (
            self.commanded is LockPosition.ENGAGED
            and not self.moving
            and not self.drive_failed
            and self.position is LockPosition.ENGAGED
        )

    async def drive(self, target: LockPosition) -> LockResult:
        """Move the lock to ``target``, retrying, and say what the feedback finally shows.

        Nothing is driven when the feedback already shows the target: a push-push coil would
        otherwise toggle the lock away from it.
        """
        async with self._serial:
            self.commanded = target
            seen = self._read_feedback()
            if seen is None:
                # Driving blind could toggle a push-push coil away from where it already is.
                return LockResult(LockOutcome.FAILED, 0, fault=ConnectorReading.PIN_READ_ERROR)
            if seen is target:
                self.drive_failed = False
                return LockResult(_REACHED[target], attempts=0)
            self.moving = True
            try:
                return await self._drive_with_retries(target)
            finally:
                self.moving = False

    async def _drive_with_retries(self, target: LockPosition) -> LockResult:
        attempts = self._config.retries + 1
        seen: LockPosition | None = None
        for attempt in range(1, attempts + 1):
            await self._wait_out_pause()
            logger.info(
                "connector %d: driving lock towards %s, attempt %d of %d",
                self._connector_id,
                target,
                attempt,
                attempts,
            )
            await self._pulse(target)
            await asyncio.sleep(self._config.settle_time)
            seen = self._read_feedback()
            if seen is target:
                self.drive_failed = False
                return LockResult(_REACHED[target], attempts=attempt)
            if seen is None:
                return LockResult(
                    LockOutcome.FAILED, attempt, fault=ConnectorReading.PIN_READ_ERROR
                )
        self.drive_failed = True
        logger.error(
            "connector %d: lock failed to move: still %s after %d attempts towards %s",
            self._connector_id,
            seen,
            attempts,
            target,
        )
        return LockResult(LockOutcome.FAILED, attempts, fault=ConnectorReading.LOCK_FAILED_TO_MOVE)

    @property
    def feedback(self) -> LockFeedback:
        """The feedback switch this actuator received; its word is the only one trusted."""
        return self._feedback

    @property
    def pins(self) -> dict[str, int]:
        """``{role: BCM pin}``: the outputs that drive the lock (the feedback is a part of its
        own)."""
        config = self._config
        drives = {LOCK_DRIVE: config.lock_pin, UNLOCK_DRIVE: config.unlock_pin}
        return {role: pin for role, pin in drives.items() if pin is not None}

    def _read_feedback(self) -> LockPosition | None:
        """The feedback, or None when the pin cannot be read."""
        try:
            return self._feedback.position
        except PinReadError:
            logger.exception("connector %d: lock feedback unreadable", self._connector_id)
            return None

    async def _wait_out_pause(self) -> None:
        loop = asyncio.get_running_loop()
        rest = max(self._config.pause, self._last_on_time)
        remaining = self._last_pulse_end + rest - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _pulse(self, target: LockPosition) -> None:
        self.drives += 1
        loop = asyncio.get_running_loop()
        self._energise(target)
        started = loop.time()
        try:
            await asyncio.sleep(min(self._config.drive_time, MAX_DRIVE_TIME))
        finally:
            self.outputs_off()
            self._last_pulse_end = loop.time()
            self._last_on_time = self._last_pulse_end - started

    @abstractmethod
    def _energise(self, target: LockPosition) -> None:
        """Switch on whatever moves the lock towards ``target``."""

    @abstractmethod
    def outputs_off(self) -> None:
        """Switch every output of the actuator off; synchronous and idempotent."""

    @abstractmethod
    def release(self) -> None:
        """Outputs off, then give the pins back."""


class SolenoidLock(LockActuator):
    """Two coils (one per direction), or a single push-push coil that toggles on every pulse."""

    def __init__(
        self,
        connector_id: int,
        config: LockConfig,
        feedback: LockFeedback,
        *,
        pin_factory: Factory,
    ) -> None:
        if config.lock_pin is None:
            raise ValueError(f"connector {connector_id}: a solenoid lock needs lock_pin")
        super().__init__(connector_id, config, feedback)
        self._lock_coil = safety.output_device(
            config.lock_pin, pin_factory=pin_factory, role=LOCK_DRIVE
        )
        self._coils: tuple[DigitalOutputDevice, ...] = (self._lock_coil,)
        if config.unlock_pin is None:
            self._unlock_coil = self._lock_coil
        else:
            try:
                self._unlock_coil = safety.output_device(
                    config.unlock_pin, pin_factory=pin_factory, role=UNLOCK_DRIVE
                )
            except BaseException:
                self.release()
                raise
            self._coils += (self._unlock_coil,)

    def _energise(self, target: LockPosition) -> None:
        coil = self._lock_coil if target is LockPosition.ENGAGED else self._unlock_coil
        coil.on()

    def outputs_off(self) -> None:
        for coil in self._coils:
            coil.off()

    def release(self) -> None:
        self.outputs_off()
        for coil in self._coils:
            safety.unregister(coil)
            coil.close()


class MotorLock(LockActuator):
    """A DC motor behind an H-bridge: forward (lock_pin) engages, backward (unlock_pin) releases."""

    def __init__(
        self,
        connector_id: int,
        config: LockConfig,
        feedback: LockFeedback,
        *,
        pin_factory: Factory,
    ) -> None:
        if config.lock_pin is None or config.unlock_pin is None:
            raise ValueError(
                f"connector {connector_id}: a motor lock needs lock_pin and unlock_pin"
            )
        super().__init__(connector_id, config, feedback)
        self._motor = Motor(
            forward=config.lock_pin, backward=config.unlock_pin, pwm=False, pin_factory=pin_factory
        )
        safety.register(self._motor.forward_device, {LOCK_DRIVE: config.lock_pin})
        safety.register(self._motor.backward_device, {UNLOCK_DRIVE: config.unlock_pin})

    def _energise(self, target: LockPosition) -> None:
        if target is LockPosition.ENGAGED:
            self._motor.forward()
        else:
            self._motor.backward()

    def outputs_off(self) -> None:
        self._motor.stop()

    def release(self) -> None:
        self.outputs_off()
        for device in (self._motor.forward_device, self._motor.backward_device):
            safety.unregister(device)
        self._motor.close()


def make_lock(
    connector_id: int, config: LockConfig, feedback: LockFeedback, *, pin_factory: Factory
) -> LockActuator:
    """The actuator for ``config.kind``; a lock without one (kind ``none``) is the caller's case."""
    if config.kind is LockKind.MOTOR:
        return MotorLock(connector_id, config, feedback, pin_factory=pin_factory)
    if config.kind is LockKind.SOLENOID:
        return SolenoidLock(connector_id, config, feedback, pin_factory=pin_factory)
    raise ValueError(f"connector {connector_id}: lock kind {config.kind} has no actuator")
