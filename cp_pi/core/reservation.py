"""Reservations (OCPP 1.6 section 5.13): what ReserveNow answers, and who may use a reservation.

Pure rules over connector statuses and tags, no clock or store: the station keeps the
reservations, their timers and their rows (:mod:`cp_pi.station.reservations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cp_pi.core.status import Status


class ReserveAnswer(StrEnum):
    """OCPP 1.6 ReservationStatus."""

    ACCEPTED = "Accepted"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    REJECTED = "Rejected"
    UNAVAILABLE = "Unavailable"


@dataclass(frozen=True, slots=True)
class Reservation:
    """One reservation: ``connector_id`` as the central system asked (0: any connector) and
    ``held_connector``, the connector kept for it (for connector 0, the one kept free)."""

    reservation_id: int
    connector_id: int
    held_connector: int
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None

    def serves(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """Only the reserved idTag, or a tag of the reservation's group (same parentIdTag),
        may use it; idTokens are CiStrings, compared without case."""
        if id_tag.upper() == self.id_tag.upper():
            return True
        return (
            self.parent_id_tag is not None
            and parent_id_tag is not None
            and parent_id_tag.upper() == self.parent_id_tag.upper()
        )

    def state(self) -> dict[str, Any]:
        """What the bench and ``cp-pi status`` show of it."""
        return {
            "id": self.reservation_id,
            "id_tag": self.id_tag,
            "expires": self.expiry.isoformat().replace("+00:00", "Z"),
            "connector_id": self.connector_id,
        }


#: Statuses of a connector that is in use (section 5.13: "Occupied").
_OCCUPIED = frozenset(
    {
        Status.PREPARING,
        Status.CHARGING,
        Status.SUSPENDED_EV,
        Status.SUSPENDED_EVSE,
        Status.FINISHING,
        Status.RESERVED,
    }
)


def _answer_for(status: Status) -> ReserveAnswer:
    if status is Status.FAULTED:
        return ReserveAnswer.FAULTED
    if status is Status.UNAVAILABLE:
        return ReserveAnswer.UNAVAILABLE
    if status in _OCCUPIED:
        return ReserveAnswer.OCCUPIED
    return ReserveAnswer.ACCEPTED


def plan_reservation(
    connector_id: int,
    statuses: Mapping[int, Status],
    *,
    charge_point_operative: bool,
    connector_zero_supported: bool,
) -> tuple[ReserveAnswer, int | None]:
    """ReserveNow's answer, and the connector to hold when it is Accepted.

    ``statuses`` are the connectors' statuses as they would be without the reservation being
    replaced (a ReserveNow with a known reservationId replaces it, so its own connector counts
    as free). Connector 0 asks for any connector: one that is Available is held for the
    reservation, so that one connector stays free for its holder; when none is, the answer
    says why (Faulted when every connector is, Unavailable likewise, otherwise Occupied).
    """
    if connector_id == 0:
        if not connector_zero_supported:
            return ReserveAnswer.REJECTED, None
        if not charge_point_operative:
            return ReserveAnswer.UNAVAILABLE, None
        free = [cid for cid, status in sorted(statuses.items()) if status is Status.AVAILABLE]
        if free:
            return ReserveAnswer.ACCEPTED, free[-1]
        answers = {_answer_for(status) for status in statuses.values()}
        if len(answers) == 1 and answers != {ReserveAnswer.OCCUPIED}:
            return answers.pop(), None
        return ReserveAnswer.OCCUPIED, None
    status = statuses.get(connector_id)
    if status is None:
        return ReserveAnswer.REJECTED, None
    if not charge_point_operative:
        return ReserveAnswer.UNAVAILABLE, None
    answer = _answer_for(status)
    return answer, (connector_id if answer is ReserveAnswer.ACCEPTED else None)


def ends_reservation(status: Status) -> bool:
    """A reservation ends when its connector becomes Faulted or Unavailable (section 5.13)."""
    return status in (Status.FAULTED, Status.UNAVAILABLE)
