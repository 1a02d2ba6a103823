"""Reservations (OCPP 1.6 section 5.13): ReserveNow, CancelReservation, expiry, and the
connector each reservation holds.

A reservation holds one connector, which reports Reserved and takes only the reservation's
idTag (or a tag of its group, the same parentIdTag); for connector 0 it holds one Available
connector, so that one stays free for its holder, who may start on any connector. A reservation
ends when its transaction starts (the start and the end are one store transaction), when it is
cancelled, at its expiryDate (a timer at that instant, no polling), and when the connector it
holds becomes Faulted or Unavailable (a connector-0 reservation moves to another free connector
first, if there is one). Reservations are rows in the store: they survive a restart, and those
that expired meanwhile are dropped at start.

ReserveNow.req is not answered with a status change of its own: the status is derived from
the facts (:func:`cp_pi.core.status.connector_status`), and the charge point's refresh reports it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action, CancelReservationStatus, ReservationStatus
from ocpp.v16.enums import ConfigurationKey as K

from cp_pi.core.reservation import (
    Reservation,
    ReserveAnswer,
    ends_reservation,
    plan_reservation,
)
from cp_pi.core.routing import on
from cp_pi.core.status import Status, connector_status
from cp_pi.station.auth_cache import parse_datetime
from cp_pi.station.clock import Cancellable, Clock
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector
from cp_pi.store import Store

log = logging.getLogger("cp_pi.charge_point")


class Reservations:
    def __init__(
        self,
        *,
        store: Store,
        connectors: Mapping[int, Connector],
        configuration: ConfigurationKeys,
        clock: Clock,
        charge_point_operative: Callable[[], bool],
        refresh: Callable[[], None],
    ) -> None:
        self._store = store
        self._connectors = connectors
        self._configuration = configuration
        self._clock = clock
        self._operative = charge_point_operative
        self._refresh = refresh
        self._by_id: dict[int, Reservation] = {}
        self._timers: dict[int, Cancellable] = {}
        now = clock.now()
        for row in store.reservations():
            reservation_id, connector_id, held, id_tag, parent, expiry_date = row
            expiry = parse_datetime(expiry_date)
            if expiry is None or expiry <= now or held not in connectors:
                log.info(
                    "reservation %d dropped at start: expired, or its connector is gone",
                    reservation_id,
                )
                store.remove_reservation(reservation_id)
                continue
            reservation = Reservation(reservation_id, connector_id, held, id_tag, expiry, parent)
            self._by_id[reservation_id] = reservation
            connectors[held].reservation = reservation

    def start(self) -> None:
        """Schedule every kept reservation's expiry (needs the running event loop)."""
        for reservation in self._by_id.values():
            self._schedule(reservation)

    # -- ReserveNow and CancelReservation ------------------------------------------------------

    def reserve(
        self,
        reservation_id: int,
        connector_id: int,
        id_tag: str,
        expiry_date: str,
        parent_id_tag: str | None = None,
    ) -> ReserveAnswer:
        expiry = parse_datetime(expiry_date)
        if expiry is None or expiry <= self._clock.now():
            log.info(
                "ReserveNow %d: Rejected: expiryDate %s has passed", reservation_id, expiry_date
            )
            return ReserveAnswer.REJECTED
        replaced = self._by_id.get(reservation_id)
        statuses = {cid: self._free_status(c, replaced) for cid, c in self._connectors.items()}
        answer, held = plan_reservation(
            connector_id,
            statuses,
            charge_point_operative=self._operative(),
            connector_zero_supported=self._configuration.get_bool(
                K.reserve_connector_zero_supported
            ),
        )
        log.info(
            "ReserveNow %d for %s on connector %d: %s", reservation_id, id_tag, connector_id, answer
        )
        if held is None:
            return answer
        if replaced is not None:
            self._forget(replaced)
        reservation = Reservation(reservation_id, connector_id, held, id_tag, expiry, parent_id_tag)
        self._store.put_reservation(
            reservation_id, connector_id, held, id_tag, parent_id_tag, expiry_date
        )
        self._by_id[reservation_id] = reservation
        self._connectors[held].reservation = reservation
        self._schedule(reservation)
        self._refresh()
        return answer

    def cancel(self, reservation_id: int) -> bool:
        reservation = self._by_id.get(reservation_id)
        if reservation is None:
            log.info("CancelReservation %d: Rejected: no such reservation", reservation_id)
            return False
        self._end(reservation, "cancelled")
        self._refresh()
        return True

    # -- who may start where -------------------------------------------------------------------

    def claim(
        self, connector: Connector, id_tag: str, parent_id_tag: str | None
    ) -> Reservation | None:
        """The reservation a transaction of ``id_tag`` at ``connector`` fulfils: the one the
        connector holds, or the tag's connector-0 reservation held elsewhere."""
        held = connector.reservation
        if held is not None and held.serves(id_tag, parent_id_tag):
            return held
        for reservation in self._by_id.values():
            if reservation.connector_id == 0 and reservation.serves(id_tag, parent_id_tag):
                return reservation
        return None

    def consume(self, reservation: Reservation) -> None:
        """Its transaction started: it ends, within the caller's store transaction."""
        self._store.remove_reservation(reservation.reservation_id)
        if self._by_id.get(reservation.reservation_id) is reservation:
            log.info("reservation %d used by its transaction", reservation.reservation_id)
            self._forget(reservation)

    # -- upkeep --------------------------------------------------------------------------------

    def look_at(self) -> None:
        """Called before every status report: a reservation whose connector is Faulted or
        Unavailable (or the whole charge point Unavailable) ends; one for connector 0 moves to
        another free connector first. The status that follows is the fault's, not Reserved."""
        for reservation in list(self._by_id.values()):
            connector = self._connectors[reservation.held_connector]
            status = self._free_status(connector, reservation)
            if self._operative() and not ends_reservation(status):
                continue
            if reservation.connector_id == 0 and self._operative():
                others = [
                    c.id
                    for c in self._connectors.values()
                    if c.reservation is None and c.status()[0] is Status.AVAILABLE
                ]
                if others:
                    self._move(reservation, others[-1])
                    continue
            self._end(reservation, f"its connector is {status.value}")

    def _move(self, reservation: Reservation, held: int) -> None:
        moved = dataclasses.replace(reservation, held_connector=held)
        self._store.put_reservation(
            moved.reservation_id,
            moved.connector_id,
            held,
            moved.id_tag,
            moved.parent_id_tag,
            _timestamp(moved.expiry),
        )
        self._connectors[reservation.held_connector].reservation = None
        self._by_id[moved.reservation_id] = moved
        self._connectors[held].reservation = moved
        log.info("reservation %d now holds connector %d", moved.reservation_id, held)

    def _schedule(self, reservation: Reservation) -> None:
        timer = self._clock.timer
        delay = (reservation.expiry - self._clock.now()).total_seconds()
        rid = reservation.reservation_id
        self._timers[rid] = timer.call_at(timer.time() + max(delay, 0.0), lambda: self._expire(rid))

    def _expire(self, reservation_id: int) -> None:
        reservation = self._by_id.get(reservation_id)
        if reservation is None:
            return
        if self._clock.now() < reservation.expiry:  # the wall clock was set back meanwhile
            self._schedule(reservation)
            return
        self._end(reservation, "expired")
        self._refresh()

    def _end(self, reservation: Reservation, why: str) -> None:
        log.info("reservation %d for %s %s", reservation.reservation_id, reservation.id_tag, why)
        self._store.remove_reservation(reservation.reservation_id)
        self._forget(reservation)

    def _forget(self, reservation: Reservation) -> None:
        self._by_id.pop(reservation.reservation_id, None)
        timer = self._timers.pop(reservation.reservation_id, None)
        if timer is not None:
            timer.cancel()
        connector = self._connectors[reservation.held_connector]
        if connector.reservation is reservation:
            connector.reservation = None

    @staticmethod
    def _free_status(connector: Connector, reservation: Reservation | None) -> Status:
        """The connector's status, leaving out ``reservation`` when it is the one it holds."""
        facts = connector.facts()
        if reservation is not None and connector.reservation is reservation:
            facts = dataclasses.replace(facts, reserved=False)
        return connector_status(facts)[0]

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ReservationRequests:
    """The Reservation profile's requests."""

    def __init__(self, reservations: Reservations) -> None:
        self._reservations = reservations

    @on(Action.reserve_now)
    def reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        answer = self._reservations.reserve(
            reservation_id, connector_id, id_tag, expiry_date, parent_id_tag
        )
        return call_result.ReserveNow(status=ReservationStatus(answer.value))

    @on(Action.cancel_reservation)
    def cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        cancelled = self._reservations.cancel(reservation_id)
        status = CancelReservationStatus.accepted if cancelled else CancelReservationStatus.rejected
        return call_result.CancelReservation(status=status)
