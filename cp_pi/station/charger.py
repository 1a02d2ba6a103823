"""The charge point: its connectors, their statuses, and what it does when the hardware changes.

It composes the rest: :class:`~cp_pi.station.transactions.Transactions` starts and stops charging,
:class:`~cp_pi.station.requests.CsmsRequests` answers the central system (the OCPP session calls
its handlers directly, through :attr:`Charger.requests`), and every CALL the charge
point makes goes out through the outbox. Status notifications are not sent by the sequences
themselves: after anything changes, :meth:`Charger.refresh` derives each connector's status
from the facts and sends those that differ from what the central system last heard. A sequence in
progress (start, stop, unlock) holds its connector's ``busy`` lock, and its intermediate states
are not reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ocpp.v16.enums import ConfigurationKey as K
from ocpp.v16.enums import Reason

from cp_pi.core.pilot import offered_current
from cp_pi.core.reading import ConnectorReading, LockPosition
from cp_pi.core.schedule import Supply, date_time
from cp_pi.core.status import ErrorCode, Status, charge_point_status, status_info
from cp_pi.station.auth_cache import AuthorizationCache
from cp_pi.station.clock import Clock
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector
from cp_pi.station.healing import LockHealing
from cp_pi.station.local_list import LocalAuthList, LocalListRequests
from cp_pi.station.metering import Metering
from cp_pi.station.outbox import Outbox, RetryPolicy
from cp_pi.station.requests import Availability, CsmsRequests
from cp_pi.station.reservations import ReservationRequests, Reservations
from cp_pi.station.smart_charging import SmartCharging
from cp_pi.station.transactions import Transactions
from cp_pi.store import Store
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.charge_point")

StateListener = Callable[[], None]


class Charger:
    def __init__(
        self,
        charge_point_id: str,
        *,
        store: Store,
        connectors: Iterable[Connector],
        boot_info: dict[str, str],
        authorization_key: str | None = None,
        clock: Clock | None = None,
        supply: Supply | None = None,
    ) -> None:
        self.id = charge_point_id
        #: Every timestamp the charge point sends comes from here.
        self.clock = clock or Clock()
        self.store = store
        self.boot_info = boot_info
        connectors_list = list(connectors)
        self.connectors = {connector.id: connector for connector in connectors_list}
        self.configuration = ConfigurationKeys(
            store,
            number_of_connectors=len(self.connectors),
            has_lock=any(c.hardware.has_lock for c in self.connectors.values()),
            # The measurand lists apply to every connector: only what all their meters measure.
            measurands=frozenset.intersection(*(c.measurands for c in connectors_list)),
            authorization_key=authorization_key,
        )
        for connector in connectors_list:
            connector.meter.on_health(self._meter_health(connector))  # PowerMeterFailure, and back
            connector.on_change = self.refresh  # a new charging-profile limit
        self.authorization_cache = AuthorizationCache(store)
        self.outbox = Outbox(
            store,
            retry=RetryPolicy(
                attempts=lambda: self.configuration.get_int(K.transaction_message_attempts),
                interval=lambda: float(
                    self.configuration.get_int(K.transaction_message_retry_interval)
                ),
            ),
            wall=self.clock.now,
            timer=self.clock.timer,
        )
        availability = store.settings("availability")
        self.availability = Availability(availability.get("0", "Operative") == "Operative")
        for connector in self.connectors.values():
            connector.operative = availability.get(str(connector.id), "Operative") == "Operative"
            connector.cable_seen = connector.hardware.cable_present
            connector.ev_seen = connector.hardware.ev_connected
        #: Set once BootNotification was accepted since the process (or a reset) started.
        self.registered = False
        self.csms_connected = False
        self.reboot_requested = asyncio.Event()
        self._notified: dict[int, tuple[Status, ErrorCode]] = {}
        self._listeners: list[StateListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.metering = Metering(
            store=store,
            outbox=self.outbox,
            configuration=self.configuration,
            connectors=self.connectors,
            refresh=self.refresh,
            now=self.clock.now,
        )
        # Local Auth List Management and Reservation profiles.
        self.local_list = LocalAuthList(store, self.configuration)
        self.reservations = Reservations(
            store=store,
            connectors=self.connectors,
            configuration=self.configuration,
            clock=self.clock,
            charge_point_operative=lambda: self.operative,
            refresh=self.refresh,
        )
        self._transactions = Transactions(
            store=store,
            outbox=self.outbox,
            configuration=self.configuration,
            authorization_cache=self.authorization_cache,
            local_list=self.local_list,
            reservations=self.reservations,
            metering=self.metering,
            connectors=self.connectors,
            clock=self.clock,
            csms_reachable=lambda: self.csms_connected and self.registered,
            refresh=self.refresh,
            spawn=self._spawn,
        )
        self.outbox.on_answer = self._transactions.on_answer
        #: Charging profiles and the limit each connector follows (Smart Charging).
        self.smart_charging = SmartCharging(
            store=store,
            configuration=self.configuration,
            connectors=self.connectors,
            clock=self.clock,
            supply=supply or Supply(),
            # The connector offers min(cable, max_current, this limit) on the pilot at once.
            on_limit=lambda connector, limit: connector.apply_limit(
                None if limit is None else limit.amps,
                "" if limit is None else limit.source.value,
            ),
            ceiling=lambda connector: (
                offered_current(
                    max_current=connector.hardware.max_current,
                    cable_a=connector.hardware.cable_rating_a,
                ).amps
            ),
        )
        #: The handlers of the central system's requests, one ``@on`` method each.
        self.requests = CsmsRequests(
            connectors=self.connectors,
            availability=self.availability,
            configuration=self.configuration,
            authorization_cache=self.authorization_cache,
            outbox=self.outbox,
            store=store,
            transactions=self._transactions,
            metering=self.metering,
            boot_info=boot_info,
            send_status=lambda cid: self.send_status(cid, self.status_of(cid)),
            refresh=self.refresh,
            reboot=self.reboot_requested.set,
            spawn=self._spawn,
            smart_charging=self.smart_charging,
        )
        self._healing = LockHealing(refresh=self.refresh, spawn=self._spawn)
        #: Every object whose ``@on`` methods answer the central system: :attr:`requests`, the
        #: optional profiles' handlers, and those the composition root adds (firmware management).
        self.handlers: list[object] = [
            self.requests,
            LocalListRequests(self.local_list, self.configuration, changed=self.refresh),
            ReservationRequests(self.reservations),
            self.smart_charging,
        ]
        #: Called each time a BootNotification is accepted.
        self.boot_hooks: list[Callable[[], None]] = []
        #: Set by :meth:`close`: outputs stay off, nothing drives the pilot again.
        self._closing = False

    @property
    def operative(self) -> bool:
        """Whether the charge point as a whole (connector 0) is operative."""
        return self.availability.operative

    # -- observation ---------------------------------------------------------------------------

    def subscribe(self, listener: StateListener) -> None:
        """Called after every change of state (the bench page, the demo trace)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: StateListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def status_of(self, connector_id: int) -> tuple[Status, ErrorCode]:
        if connector_id == 0:
            return charge_point_status(
                operative=self.operative, degraded=self.store.degraded is not None
            )
        return self.connectors[connector_id].status()

    def refresh(self) -> None:
        """Report every status that changed, then tell the listeners."""
        if self._closing:
            return  # the hardware is closed: nothing to read, nothing left to report
        self.reservations.look_at()  # a Faulted or Unavailable connector ends its reservation
        # A transaction that started takes its charging profile before the pilot is driven.
        self.smart_charging.look_at_transactions()
        for each in self.connectors.values():
            self._log_reading(each)
            if each.hardware.tripped is not None:
                # A trip made while a sequence held the connector: acted on once it is over
                # (every sequence ends with a refresh), so no trip goes without its stop.
                self._act_on_trip(each)
            self._healing.look_at(each)
            self._follow_pilot(each)
        if self.registered and self.csms_connected:
            for connector_id in (0, *self.connectors):
                connector = self.connectors.get(connector_id)
                if connector is not None and (
                    connector.busy.locked() or self._healing.holds_status(connector)
                ):
                    continue  # mid-sequence: report where it ends, not the steps
                current = self.status_of(connector_id)
                if self._notified.get(connector_id) != current:
                    self.send_status(connector_id, current)
        for listener in list(self._listeners):
            listener()

    def _follow_pilot(self, connector: Connector) -> None:
        """The pilot shows the connector's state, and a vehicle that asks again is given energy
        (the contactor itself opens in the pilot's sampler, see the hardware)."""
        connector.drive_pilot()
        if connector.should_energise():
            connector.energising = True
            self._spawn(self._transactions.energise(connector))

    @staticmethod
    def _log_reading(connector: Connector) -> None:
        reading = connector.hardware.reading()
        if reading is not connector.reading_seen:
            good = reading is ConnectorReading.GOOD_CONNECTION
            log.log(
                logging.INFO if good else logging.ERROR,
                "connector %d: %s (was %s)",
                connector.id,
                reading.value,
                connector.reading_seen.value,
            )
            connector.reading_seen = reading

    def send_status(self, connector_id: int, status: tuple[Status, ErrorCode]) -> None:
        if not self.outbox.online:
            return  # sent fresh when the link is back, if it still differs
        self._notified[connector_id] = status
        payload = {
            "connectorId": connector_id,
            "status": status[0].value,
            "errorCode": status[1].value,
            "timestamp": self.clock.timestamp(),
        }
        if connector_id == 0:
            if self.store.degraded is not None:
                payload["info"] = "message store in memory"
        else:
            connector = self.connectors[connector_id]
            reading = connector.hardware.reading()
            if reading is not ConnectorReading.GOOD_CONNECTION:
                payload["info"] = connector.hardware.fault_info() or reading.value
            elif info := status_info(connector.facts()):
                payload["info"] = info
        self.outbox.send("StatusNotification", payload)

    def recover(self) -> None:
        """Close what the last run left open: every contactor opens, each open transaction ends."""
        for connector in self.connectors.values():
            connector.hardware.outputs_off()
        self._transactions.end_left_open()

    # -- link events (called by the link) ------------------------------------------------------

    def on_registered(self, heartbeat_interval: int) -> None:
        self.registered = True
        if heartbeat_interval > 0:
            self.configuration.change(K.heartbeat_interval, str(heartbeat_interval))
        self._notified.clear()  # after a boot the central system hears every status afresh
        for hook in self.boot_hooks:
            hook()

    def on_link(self, connected: bool) -> None:
        self.csms_connected = connected
        self.refresh()

    def restart(self) -> None:
        """A reset completed: the next connection boots again."""
        self.registered = False
        self.reboot_requested.clear()

    # -- hardware events -----------------------------------------------------------------------

    def on_hardware_change(self, connector: Connector) -> None:
        cable = connector.hardware.cable_present
        if cable != connector.cable_seen:
            connector.cable_seen = cable
            log.info("connector %d: cable %s", connector.id, "plugged" if cable else "removed")
            self._healing.cable_changed(connector)
            if cable:
                connector.finishing = False
                connector.held_for_owner = False
                if connector.awaiting_tag is not None and connector.transaction is None:
                    tag = connector.awaiting_tag
                    connector.stop_waiting_for_cable()
                    self._spawn(self._transactions.start(connector, tag))
            else:
                connector.finishing = False
                connector.ended_for = None
                self._on_cable_removed(connector)
        self._check_ev_side(connector)
        self._check_safety(connector)
        self.refresh()

    def _check_ev_side(self, connector: Connector) -> None:
        """The pilot reads A while the cable is still in the socket: the cable was pulled out
        at the vehicle. The transaction follows StopTransactionOnEVSideDisconnect as for a
        cable pulled out of the socket (TC_005)."""
        hardware = connector.hardware
        connected = hardware.ev_connected
        if connected == connector.ev_seen:
            return
        connector.ev_seen = connected
        if hardware.has_pilot and not connected and hardware.cable_present:
            log.info("connector %d: vehicle disconnected at its side", connector.id)
            self._on_cable_removed(connector)

    def _check_safety(self, connector: Connector) -> None:
        """The hardware stopped energy on its own when the lock chain could no longer be trusted
        (:meth:`ConnectorHardware.supervise`); the transaction ends for it once no sequence holds
        the connector."""
        connector.hardware.supervise()
        self._act_on_trip(connector)

    def _meter_health(self, connector: Connector) -> Callable[[bool], None]:
        def changed(ok: bool) -> None:
            tx = connector.transaction
            if not ok and connector.meter_required and tx is not None:
                # No energy that is not metered (meter.on_failure = "stop"); Reason Other, as
                # for the other faults of the charge point's own hardware.
                log.error(
                    "connector %d: meter not answering and meter.on_failure is stop: ending %s",
                    connector.id,
                    tx.name,
                )
                self._spawn(self._transactions.stop(connector, Reason.other))
            self.refresh()

        return changed

    def _act_on_trip(self, connector: Connector) -> None:
        hardware = connector.hardware
        if hardware.tripped is None or connector.busy.locked():
            return
        reading = hardware.acknowledge_trip()
        if connector.transaction is not None:
            log.error(
                "connector %d: %s while charging; ending %s",
                connector.id,
                reading,
                connector.transaction.name,
            )
            # A residual-current trip leaves the lock chain sound: the cable is given back (once
            # the contactor is confirmed open), since only its removal clears the fault.
            unlock = reading is ConnectorReading.RCD_TRIPPED
            self._spawn(self._transactions.stop(connector, Reason.other, unlock=unlock))

    def _on_cable_removed(self, connector: Connector) -> None:
        """A transaction whose idTag was refused ends with its cable; others as configured."""
        tx = connector.transaction
        if tx is None:
            return
        if tx.deauthorized or self.configuration.get_bool(K.stop_transaction_on_ev_side_disconnect):
            unlock = self.configuration.get_bool(K.unlock_connector_on_ev_side_disconnect)
            connector.held_for_owner = not unlock
            self._spawn(self._transactions.stop(connector, Reason.ev_disconnected, unlock=unlock))
        else:
            self._spawn(self._transactions.suspend(connector))

    # -- local actions (RFID reader, bench) ----------------------------------------------------

    def swipe(self, connector_id: int, id_tag: str) -> None:
        """Present a tag: it stops the transaction it (or its group) started, takes back a cable
        a stop left locked, or starts a transaction where a remote start would be accepted."""
        connector = self.connectors[connector_id]
        tx = connector.transaction
        if tx is not None:
            if tx.id_tag == id_tag:
                self._spawn(self._transactions.stop(connector, Reason.local, id_tag=id_tag))
            elif tx.parent_id_tag is not None:
                self._spawn(self._transactions.stop_for_group(connector, tx, id_tag))
            else:
                log.info("connector %d: tag %s does not own %s", connector_id, id_tag, tx.name)
            return
        position = connector.hardware.snapshot().lock_feedback
        if connector.ended_for == id_tag and position is LockPosition.ENGAGED:
            log.info("connector %d: tag %s takes its cable back", connector_id, id_tag)
            self._spawn(self._give_cable_back(connector))
            return
        if not connector.may_start(charge_point_operative=self.operative):
            log.info(
                "connector %d: tag %s refused: the connector is %s",
                connector_id,
                id_tag,
                connector.status()[0].value if self.operative else "Unavailable",
            )
            return
        self._spawn(self._transactions.authorize_and_start(connector, id_tag, check=True))

    async def _give_cable_back(self, connector: Connector) -> None:
        async with connector.busy:
            if connector.transaction is None:
                await connector.hardware.unlock()
        self.refresh()

    # -- state for the bench -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "type": "state",
            "charge_point_id": self.id,
            "csms_connected": self.csms_connected,
            "registered": self.registered,
            "status": self.status_of(0)[0].value,
            "queued_transaction_messages": self.outbox.pending_transaction_messages,
            "store_degraded": self.store.degraded,
            "local_list_version": self.local_list.version(),
            "connectors": [c.state() for c in self.connectors.values()],
            "charging_limits": [
                {
                    "connector": cid,
                    "limit_a": None if limit is None else round(limit.amps, 1),
                    "source": None if limit is None else limit.source.value,
                    "next_change": (
                        None
                        if (change := self.smart_charging.next_changes.get(cid)) is None
                        else date_time(change)
                    ),
                }
                for cid, limit in sorted(self.smart_charging.limits.items())
            ],
        }

    # -- housekeeping --------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("charge point task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop background work and put every output in its safe state (contactor open)."""
        self._closing = True
        tasks = list(self._tasks)
        self.reservations.close()
        for connector in self.connectors.values():
            connector.stop_waiting_for_cable()
            connector.hardware.outputs_off()
            if connector.transaction is not None:
                tasks.extend(connector.transaction.watchers)
        self.smart_charging.close()
        await self.metering.close()
        await cancel_and_wait(tasks)
