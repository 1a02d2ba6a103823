"""What the pins say about a connector, as one verdict.

The seed SDK gates every unlock on ``connectorDetails.connectorStatus == GOOD_CONNECTION``.
:func:`assess` is that reading: it turns a snapshot of the pins and of what the driver last
commanded into ``GOOD_CONNECTION`` or the one fault that explains the disagreement. It is pure so
that the rules can be tested without hardware and reused by the self-test and the bench.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConnectorReading(StrEnum):
    """The health of a connector's lock chain (the seed's ``connectorStatus``)."""

    GOOD_CONNECTION = "GOOD_CONNECTION"
    #: An input could not be read (the pin driver raised).
    PIN_READ_ERROR = "PIN_READ_ERROR"
    #: The contactor was commanded open but its auxiliary contact still reads closed.
    CONTACTOR_WELDED = "CONTACTOR_WELDED"
    #: The contactor was commanded closed but its auxiliary contact reads open.
    CONTACTOR_FAILED_TO_CLOSE = "CONTACTOR_FAILED_TO_CLOSE"
    #: The last drive of the lock actuator ended without the feedback reaching its target.
    LOCK_FAILED_TO_MOVE = "LOCK_FAILED_TO_MOVE"
    #: The lock was commanded engaged but the feedback reads open (forced, or a broken wire).
    LOCK_UNEXPECTEDLY_OPEN = "LOCK_UNEXPECTEDLY_OPEN"
    #: The lock was commanded released but the feedback reads engaged.
    LOCK_UNEXPECTEDLY_ENGAGED = "LOCK_UNEXPECTEDLY_ENGAGED"
    #: The residual-current monitor tripped (or failed its self-test): current leaks to earth.
    RCD_TRIPPED = "RCD_TRIPPED"
    #: The control pilot says the vehicle cannot be charged: its diode is missing, the pilot is
    #: shorted to PE (state E), or the ADC that reads it does not answer.
    PILOT_FAULT = "PILOT_FAULT"
    #: The plug's coding resistor is in no band: the cable or plug is damaged.
    CABLE_CODING_INVALID = "CABLE_CODING_INVALID"

    @property
    def is_lock_fault(self) -> bool:
        """Faults that OCPP reports as ``ConnectorLockFailure``."""
        return self in _LOCK_FAULTS

    @property
    def stops_charging(self) -> bool:
        """Faults that end energy transfer at once: the plug may no longer be held, or the
        charge point can no longer tell (a live socket must never be unlockable by hand)."""
        return self in _STOPS_CHARGING


_LOCK_FAULTS = frozenset(
    {
        ConnectorReading.LOCK_FAILED_TO_MOVE,
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
        ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED,
    }
)


_STOPS_CHARGING = frozenset(
    {
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
        ConnectorReading.PIN_READ_ERROR,
        ConnectorReading.CONTACTOR_FAILED_TO_CLOSE,
        ConnectorReading.RCD_TRIPPED,
        ConnectorReading.PILOT_FAULT,
        ConnectorReading.CABLE_CODING_INVALID,
    }
)


class LockPosition(StrEnum):
    """Where a lock is, or was last commanded to be."""

    ENGAGED = "engaged"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class PinSnapshot:
    """Everything :func:`assess` needs, read at one moment.

    ``None`` means "this connector has no such part" (no lock, no auxiliary contact) or, for
    ``lock_commanded``, that nothing was commanded yet since start-up.
    """

    cable_present: bool
    lock_feedback: LockPosition | None
    lock_commanded: LockPosition | None
    lock_moving: bool
    lock_drive_failed: bool
    contactor_commanded_closed: bool
    contactor_feedback_closed: bool | None
    contactor_settling: bool
    read_error: bool = False
    #: The residual-current monitor tripped and has not been cleared (see the connector).
    rcd_tripped: bool = False
    #: Why the control pilot forbids charging (:attr:`cp_pi.core.pilot.PilotReading.fault`).
    pilot_fault: str | None = None
    #: The proximity pilot's coding resistor is in no band.
    cable_coding_invalid: bool = False


def assess(snapshot: PinSnapshot) -> ConnectorReading:
    """Reduce a snapshot to one verdict; the most dangerous disagreement wins.

    Disagreements during a drive or while the contactor is settling are transitions, not faults.
    """
    s = snapshot
    if s.rcd_tripped:  # a person may be touching a live part: nothing outranks it
        return ConnectorReading.RCD_TRIPPED
    if s.read_error:
        return ConnectorReading.PIN_READ_ERROR
    if s.contactor_feedback_closed is not None and not s.contactor_settling:
        if s.contactor_feedback_closed and not s.contactor_commanded_closed:
            return ConnectorReading.CONTACTOR_WELDED
        if s.contactor_commanded_closed and not s.contactor_feedback_closed:
            return ConnectorReading.CONTACTOR_FAILED_TO_CLOSE
    if s.pilot_fault is not None:
        return ConnectorReading.PILOT_FAULT
    if s.cable_coding_invalid:
        return ConnectorReading.CABLE_CODING_INVALID
    if s.lock_feedback is None or s.lock_moving:
        return ConnectorReading.GOOD_CONNECTION
    if s.lock_drive_failed:
        return ConnectorReading.LOCK_FAILED_TO_MOVE
    if s.lock_commanded is LockPosition.ENGAGED and s.lock_feedback is LockPosition.RELEASED:
        return ConnectorReading.LOCK_UNEXPECTEDLY_OPEN
    if s.lock_commanded is LockPosition.RELEASED and s.lock_feedback is LockPosition.ENGAGED:
        return ConnectorReading.LOCK_UNEXPECTEDLY_ENGAGED
    return ConnectorReading.GOOD_CONNECTION


def energised_without_cable(snapshot: PinSnapshot) -> bool:
    """The contactor is commanded closed with no cable in the socket: open it at once.

    Not a fault of the lock chain (a cable pulled during a charge is an ordinary event), so it is
    no :class:`ConnectorReading`; but an empty socket must never stay live, whoever watches.
    An unreadable input is the reading ``PIN_READ_ERROR``, which stops charging by itself.
    """
    s = snapshot
    return s.contactor_commanded_closed and not s.cable_present and not s.read_error


class LockOutcome(StrEnum):
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LockResult:
    """What a lock or unlock drive achieved, judged by the feedback alone.

    ``refused`` says why nothing was driven (the contactor interlock); ``fault`` names the
    reading that explains a failure.
    """

    outcome: LockOutcome
    attempts: int
    fault: ConnectorReading | None = None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not LockOutcome.FAILED


class ContactorOutcome(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ContactorResult:
    """What a close or open command achieved, judged by the aux contact (a contactor without
    one is taken at its command), in the style of :class:`LockResult`.

    ``refused`` says why nothing was switched (the interlocks); ``fault`` names the reading that
    explains a failure (``CONTACTOR_FAILED_TO_CLOSE``, ``CONTACTOR_WELDED``).
    """

    outcome: ContactorOutcome
    fault: ConnectorReading | None = None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not ContactorOutcome.FAILED
