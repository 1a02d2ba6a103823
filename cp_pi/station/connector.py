"""One connector at run time: its hardware, its meter, its transaction and what it waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cp_pi.core.healing import LockCare, lock_care
from cp_pi.core.metering import (
    CURRENT,
    CURRENT_OFFERED,
    POWER,
    VOLTAGE,
    Reading,
    TransactionData,
)
from cp_pi.core.pilot import Offer, offered_current
from cp_pi.core.reading import ConnectorReading, LockPosition, assess
from cp_pi.core.reservation import Reservation
from cp_pi.core.status import (
    ConnectorFacts,
    ErrorCode,
    Status,
    connector_status,
    takes_new_transaction,
)
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.meter import EnergyMeter
from cp_pi.store import TransactionRecord


@dataclass
class Transaction(TransactionRecord):
    """A running transaction: what the store keeps of it, and the tasks that watch it."""

    #: The meter sampler, cancelled when the transaction ends (the hardware watches the pins).
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    #: The meter values its StopTransaction will carry.
    data: TransactionData = field(default_factory=TransactionData)
    #: The central system refused its idTag after an offline start (StartTransaction.conf not
    #: Accepted) and StopTransactionOnInvalidId is false: no energy, ended when the cable goes.
    deauthorized: bool = False
    #: The starting tag's parentIdTag, from the central system's idTagInfo (StartTransaction's
    #: answer, else the authorization cache): another tag of that group may stop it.
    parent_id_tag: str | None = None


@dataclass
class Connector:
    hardware: ConnectorHardware
    meter: EnergyMeter
    #: ``meter.on_failure = "stop"``: a failed meter ends the transaction and faults the connector.
    meter_required: bool = False
    operative: bool = True
    #: An availability change that waits for the running transaction to end (Scheduled).
    scheduled_operative: bool | None = None
    transaction: Transaction | None = None
    finishing: bool = False
    #: A tag authorized for this connector that waits for the cable (until its deadline).
    awaiting_tag: str | None = None
    awaiting_timer: asyncio.TimerHandle | None = None
    #: Start, stop and unlock sequences on one connector never interleave.
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    cable_seen: bool = False
    #: The idTag of the transaction that ended last, until the cable is removed: after a stop
    #: that left the cable locked (a safety stop), this tag releases it.
    ended_for: str | None = None
    #: A transaction ended by an EV-side disconnect with UnlockConnectorOnEVSideDisconnect
    #: false: the lock keeps the cable at the charger's side until its owner's tag or an
    #: UnlockConnector releases it (or a cable is plugged again).
    held_for_owner: bool = False
    reading_seen: ConnectorReading = ConnectorReading.GOOD_CONNECTION
    #: The reservation this connector is held for (ReserveNow), kept by the station's
    #: :class:`~cp_pi.station.reservations.Reservations`.
    reservation: Reservation | None = None
    #: The charging-profile limit in amperes (None: no profile limits it) and its purpose.
    limit_a: float | None = None
    limit_purpose: str | None = None
    #: Called after :meth:`apply_limit` changed the offer (the charge point's refresh).
    on_change: Callable[[], None] | None = None
    #: A vehicle was at the cable's other end when last looked (for an EV-side disconnect).
    ev_seen: bool = False
    #: A sequence that closes the contactor for a vehicle asking again is under way.
    energising: bool = False

    @property
    def id(self) -> int:
        return self.hardware.connector_id

    # -- the current on offer --------------------------------------------------------------------

    def offer(self) -> Offer:
        """min(cable rating, ``max_current``, charging-profile limit), and which term set it."""
        hardware = self.hardware
        return offered_current(
            max_current=hardware.max_current,
            cable_a=hardware.cable_rating_a,
            limit_a=self.limit_a,
            limit_source=self.limit_purpose,
        )

    def apply_limit(self, amps: float | None, source: str) -> None:
        """A charging-profile limit for this connector (None: none); ``source`` is its purpose,
        "ChargePointMaxProfile" | "TxDefaultProfile" | "TxProfile".

        The pilot's duty changes here and now, and below 6 A the wave stops and the contactor
        opens in this call; the status (SuspendedEVSE, and Charging again once the limit rises
        and the vehicle draws) follows from the charge point's refresh, called at the end.
        """
        self.limit_a = amps
        self.limit_purpose = None if amps is None else source
        self.drive_pilot()
        if self.on_change is not None:
            self.on_change()

    def offered_a(self) -> float:
        """The current on offer on the pilot now: 0 while the wave is off."""
        return self.offer().amps if self.hardware.pwm_on else 0.0

    @property
    def measurands(self) -> frozenset[str]:
        """What this connector measures: its meter's measurands and, with a pilot,
        Current.Offered."""
        offered = {CURRENT_OFFERED} if self.hardware.has_pilot else set()
        return self.meter.measurands | offered

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        """The latest reading of each of ``measurands`` that this connector measures, in
        order: the meter's, and the current on offer."""
        readings = []
        for measurand in measurands:
            if measurand == CURRENT_OFFERED and self.hardware.has_pilot:
                readings.append(Reading(CURRENT_OFFERED, self.offered_a(), "A"))
            else:
                readings.extend(self.meter.read([measurand]))
        return readings

    def offers_current(self) -> bool:
        """The wave runs: a transaction may draw, and at least 6 A are on offer."""
        tx = self.transaction
        return tx is not None and not tx.deauthorized and self.offer().duty is not None

    def drive_pilot(self) -> None:
        """Put the pilot where the facts say: -12 V (F) while Unavailable or Faulted (a pilot
        fault excepted, so that it can be seen to clear), else the wave of the offer while a
        transaction may draw, else a steady +12 V."""
        hardware = self.hardware
        if not hardware.has_pilot:
            return
        status, _ = self.status()
        reading = hardware.reading()
        hardware.set_unavailable(
            status is Status.UNAVAILABLE
            or (status is Status.FAULTED and reading is not ConnectorReading.PILOT_FAULT)
        )
        hardware.offer(self.offer().amps if self.offers_current() else None)

    def should_energise(self) -> bool:
        """A vehicle asks again (C2/D2) while its transaction runs with the contactor open, and
        no sequence holds the connector."""
        return not (self.energising or self.busy.locked()) and self.may_energise()

    def may_energise(self) -> bool:
        hardware = self.hardware
        tx = self.transaction
        return (
            hardware.has_pilot
            and tx is not None
            and not tx.deauthorized
            and not hardware.contactor_closed
            and hardware.ev_wants_energy
            and hardware.energy_allowed()
            and hardware.cable_in
            and hardware.reading() is ConnectorReading.GOOD_CONNECTION
        )

    def facts(self) -> ConnectorFacts:
        hardware = self.hardware
        return ConnectorFacts(
            operative=self.operative,
            reading=hardware.reading(),
            cable_present=hardware.cable_present,
            transaction_running=self.transaction is not None,
            energy_offered=hardware.contactor_closed,
            awaiting_cable=self.awaiting_tag is not None,
            finishing=self.finishing,
            cable_held=self.holds_cable(),
            meter_ok=self.meter.ok,
            reserved=self.reservation is not None,
            meter_required=self.meter_required,
            ev_connected=hardware.ev_connected,
            ev_suspended=hardware.ev_paused,
        )

    def status(self) -> tuple[Status, ErrorCode]:
        return connector_status(self.facts())

    def may_start(self, *, charge_point_operative: bool) -> bool:
        """Whether a new transaction may start here: one rule for a local tag and a remote
        start alike (availability of the connector and of the charge point, faults)."""
        return (
            charge_point_operative
            and self.transaction is None
            and not self.busy.locked()
            # A reserved connector takes its holder: who that is, the start decides.
            and (takes_new_transaction(status := self.status()[0]) or status is Status.RESERVED)
        )

    def holds_cable(self) -> bool:
        """The lock keeps the cable for its owner (see :attr:`held_for_owner`)."""
        return self.held_for_owner and self.hardware.lock_position is LockPosition.ENGAGED

    def lock_care(self) -> LockCare:
        if self.holds_cable():
            return LockCare.NONE
        snapshot = self.hardware.snapshot()
        return lock_care(
            has_lock=self.hardware.has_lock,
            transaction_running=self.transaction is not None,
            contactor_closed=snapshot.contactor_commanded_closed,
            cable_present=snapshot.cable_present,
            lock_feedback=snapshot.lock_feedback,
            reading=assess(snapshot),
        )

    def stop_waiting_for_cable(self) -> None:
        self.awaiting_tag = None
        if self.awaiting_timer is not None:
            self.awaiting_timer.cancel()
            self.awaiting_timer = None

    def meter_state(self) -> dict[str, Any]:
        """The meter's latest figures: the register, the total power (None where the meter
        measures none), and each phase's current and voltage in the order L1, L2, L3."""
        meter = self.meter
        power = meter.read([POWER])
        return {
            "energy_wh": meter.read_wh(),
            "power_w": power[0].value if power else None,
            "current_a": [reading.value for reading in meter.read([CURRENT])],
            "voltage_v": [reading.value for reading in meter.read([VOLTAGE])],
            "ok": meter.ok,
        }

    def state(self) -> dict[str, Any]:
        """What the bench page shows of this connector."""
        hardware = self.hardware
        status, error = self.status()
        tx = self.transaction
        position = hardware.lock_position
        offer = self.offer()
        duty = hardware.pilot_duty
        return {
            "id": self.id,
            "cable": hardware.cable_present,
            "has_lock": hardware.has_lock,
            "locked": position is not None and position.value == "engaged",
            "contactor_closed": hardware.contactor_closed,
            "status": status.value,
            "error_code": error.value,
            "transaction_id": None if tx is None else tx.transaction_id,
            "id_tag": None if tx is None else tx.id_tag,
            "meter_wh": self.meter.read_wh(),
            "meter": self.meter_state(),
            "connector_status": hardware.reading().value,
            "lock_drives": hardware.lock_drives,
            "operative": self.operative,
            "reservation": None if self.reservation is None else self.reservation.state(),
            "pilot_state": hardware.pilot_state,
            "pilot_duty": None if duty is None else round(duty, 1),
            "current_offered_a": self.offered_a() if hardware.has_pilot else None,
            "cable_rating_a": hardware.cable_rating_a,
            "limit_source": offer.source,
        }
