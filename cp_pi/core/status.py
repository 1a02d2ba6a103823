"""The OCPP status of a connector, derived from facts rather than driven by transitions.

Deriving the status from what is true now (cable, transaction, availability, the connector
reading) keeps it right after any sequence of events, including a restart, and makes "send a
StatusNotification when it changes" a comparison instead of a state machine to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cp_pi.core.reading import ConnectorReading


class Status(StrEnum):
    """OCPP 1.6 ChargePointStatus."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ErrorCode(StrEnum):
    """The OCPP 1.6 ChargePointErrorCode values this charge point can report."""

    NO_ERROR = "NoError"
    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    GROUND_FAILURE = "GroundFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    POWER_METER_FAILURE = "PowerMeterFailure"
    INTERNAL_ERROR = "InternalError"
    OTHER_ERROR = "OtherError"


def error_code_of(reading: ConnectorReading) -> ErrorCode:
    if reading is ConnectorReading.GOOD_CONNECTION:
        return ErrorCode.NO_ERROR
    if reading.is_lock_fault:
        return ErrorCode.CONNECTOR_LOCK_FAILURE
    if reading is ConnectorReading.RCD_TRIPPED:
        return ErrorCode.GROUND_FAILURE
    if reading in (ConnectorReading.CONTACTOR_WELDED, ConnectorReading.CONTACTOR_FAILED_TO_CLOSE):
        return ErrorCode.POWER_SWITCH_FAILURE
    if reading in (ConnectorReading.PILOT_FAULT, ConnectorReading.CABLE_CODING_INVALID):
        # OCPP 1.6 has no code for the EV side; OtherError with the reason in info.
        return ErrorCode.OTHER_ERROR
    return ErrorCode.INTERNAL_ERROR


@dataclass(frozen=True, slots=True)
class ConnectorFacts:
    """What is true of one connector at one moment."""

    operative: bool
    reading: ConnectorReading
    cable_present: bool
    transaction_running: bool
    energy_offered: bool
    #: An authorization (remote start or tag) waits for the cable.
    awaiting_cable: bool = False
    #: A transaction ended and the cable has not been removed yet.
    finishing: bool = False
    #: The lock keeps a cable whose EV side was disconnected, until its owner comes back
    #: (UnlockConnectorOnEVSideDisconnect = false): Finishing, never Available.
    cable_held: bool = False
    #: The energy meter answers with sane readings; when not, charging goes on (the meter's
    #: last good register still ends the transaction) and the status says PowerMeterFailure.
    meter_ok: bool = True
    #: A reservation holds the connector (ReserveNow): Reserved until its holder comes, it
    #: expires or is cancelled.
    reserved: bool = False
    #: No energy without a meter (``meter.on_failure = "stop"``): a failed meter faults the
    #: connector instead.
    meter_required: bool = False
    #: A vehicle is at the cable's other end (the control pilot reads B, C or D; without a
    #: pilot, the cable is all there is to go by).
    ev_connected: bool = True
    #: The charger offers current on the pilot and the vehicle does not ask for it (B2).
    ev_suspended: bool = False


def connector_status(facts: ConnectorFacts) -> tuple[Status, ErrorCode]:
    """OCPP 1.6 section 4.9, as a function of the facts.

    A failed meter does not fault the connector unless the meter is required: it charges on and
    says PowerMeterFailure.
    """
    error = error_code_of(facts.reading)
    if error is not ErrorCode.NO_ERROR:
        return Status.FAULTED, error
    if not facts.meter_ok:
        if facts.meter_required:
            return Status.FAULTED, ErrorCode.POWER_METER_FAILURE
        error = ErrorCode.POWER_METER_FAILURE
    if facts.transaction_running:
        if not (facts.cable_present and facts.ev_connected) or (
            facts.ev_suspended and not facts.energy_offered
        ):
            return Status.SUSPENDED_EV, error
        return (Status.CHARGING if facts.energy_offered else Status.SUSPENDED_EVSE), error
    if not facts.operative:
        return Status.UNAVAILABLE, error
    if (facts.finishing and facts.cable_present) or facts.cable_held:
        return Status.FINISHING, error
    if facts.reserved and not facts.awaiting_cable:
        return Status.RESERVED, error
    if facts.cable_present or facts.awaiting_cable:
        return Status.PREPARING, error
    return Status.AVAILABLE, error


def status_info(facts: ConnectorFacts) -> str | None:
    """The StatusNotification ``info`` that says why, where the status alone does not.

    A transaction that runs on without its cable (StopTransactionOnEVSideDisconnect = false) is
    SuspendedEV because the EV side was disconnected, not because the vehicle paused.
    """
    healthy = error_code_of(facts.reading) is ErrorCode.NO_ERROR
    if healthy and facts.transaction_running and not (facts.cable_present and facts.ev_connected):
        return "EV side disconnected"
    if healthy and not facts.meter_ok:
        return "energy meter not answering or answering garbage"
    return None


_TAKES_NEW_TRANSACTION = frozenset({Status.AVAILABLE, Status.PREPARING, Status.FINISHING})


def takes_new_transaction(status: Status) -> bool:
    """A connector in this status may start a transaction; not when it is Unavailable, Faulted,
    or already busy with one (OCPP 1.6 sections 4.9 and 5.11)."""
    return status in _TAKES_NEW_TRANSACTION


def charge_point_status(*, operative: bool, degraded: bool = False) -> tuple[Status, ErrorCode]:
    """Connector 0 (the charge point as a whole) is only Available, Unavailable or Faulted.

    A degraded charge point (its message store fell back to memory) still charges, so it stays
    Available and says OtherError: the operator must know before a restart loses messages.
    """
    status = Status.AVAILABLE if operative else Status.UNAVAILABLE
    return status, (ErrorCode.OTHER_ERROR if degraded else ErrorCode.NO_ERROR)
