"""One connector at run time: its hardware, its meter, its transaction and what it waits for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cp_pi.core.healing import LockCare, lock_care
from cp_pi.core.metering import CURRENT, POWER, VOLTAGE, TransactionData
from cp_pi.core.reading import ConnectorReading, LockPosition, assess
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

    @property
    def id(self) -> int:
        return self.hardware.connector_id

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
            meter_required=self.meter_required,
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
            and takes_new_transaction(self.status()[0])
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
        }
