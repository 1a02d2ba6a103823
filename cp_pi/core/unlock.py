"""The UnlockConnector decision: the seed SDK's ``connectorStatus == GOOD_CONNECTION`` made whole.

The seed answers ``UNLOCK_CONNECTOR_UNLOCKED`` on a good reading (stopping a running charge) and
``UNLOCK_CONNECTOR_UNLOCKFAILED`` otherwise. OCPP 1.6 adds what the seed leaves out: NotSupported
for a connector that does not exist or has no lock (the transaction keeps running), the transaction
is finished *before* the lock moves, and the answer comes from the lock feedback, never from the
command. :func:`plan_unlock` decides what to do; :func:`unlock_status` judges what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cp_pi.core.reading import ConnectorReading, LockOutcome, LockResult


class UnlockStatus(StrEnum):
    """The seed's ``UNLOCK_CONNECTOR_STATUS_T``, spelled as the OCPP 1.6 schema wants it."""

    UNLOCKED = "Unlocked"  # UNLOCK_CONNECTOR_UNLOCKED
    UNLOCK_FAILED = "UnlockFailed"  # UNLOCK_CONNECTOR_UNLOCKFAILED
    NOT_SUPPORTED = "NotSupported"  # UNLOCK_CONNECTOR_NOTSUPPORTED


#: Readings on which a drive cannot be trusted to release the cable, or must not be tried.
#: A lock that merely failed to move last time (or was found engaged) is tried again: a new drive
#: is exactly the cure, and the feedback still judges the result.
_REFUSING_READINGS = frozenset(
    {
        ConnectorReading.PIN_READ_ERROR,
        ConnectorReading.CONTACTOR_WELDED,
        ConnectorReading.LOCK_UNEXPECTEDLY_OPEN,
    }
)


@dataclass(frozen=True, slots=True)
class UnlockPlan:
    """What the charge point does for one UnlockConnector request.

    ``answer`` is set when the request is answered without driving the lock.
    ``stop_transaction`` finishes the running transaction first (reason UnlockCommand).
    """

    answer: UnlockStatus | None
    stop_transaction: bool = False

    @property
    def drive_lock(self) -> bool:
        return self.answer is None


def plan_unlock(
    *,
    connector_exists: bool,
    has_lock: bool,
    reading: ConnectorReading,
    transaction_running: bool,
) -> UnlockPlan:
    """Connector reading + transaction state -> what to do, as the seed and OCPP 1.6 say."""
    if not connector_exists or not has_lock:
        return UnlockPlan(answer=UnlockStatus.NOT_SUPPORTED)
    if reading in _REFUSING_READINGS:
        # Seed: a bad connector connection answers UNLOCKFAILED. A running charge is still finished:
        # the CSMS asked for the cable, energy must stop either way.
        return UnlockPlan(answer=UnlockStatus.UNLOCK_FAILED, stop_transaction=transaction_running)
    return UnlockPlan(answer=None, stop_transaction=transaction_running)


def unlock_status(*, contactor_open: bool, result: LockResult | None) -> UnlockStatus:
    """Judge the outcome: only a confirmed open contactor and a feedback that says released count.

    ``result`` is None when the drive did not finish in time.
    """
    if not contactor_open or result is None:
        return UnlockStatus.UNLOCK_FAILED
    if result.outcome is LockOutcome.UNLOCKED:
        return UnlockStatus.UNLOCKED
    return UnlockStatus.UNLOCK_FAILED
