"""The charge point: connectors, transactions, availability and the answers to the central system.

The OCPP session calls in here; every CALL the charge point makes goes out through the outbox.
Status notifications are not sent by the sequences themselves: after anything changes,
:meth:`ChargePoint.refresh` derives each connector's status from the facts and sends those that
differ from what the central system last heard. A sequence in progress (start, stop, unlock) holds
its connector's ``busy`` lock, and its intermediate states are not reported.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.status import ErrorCode, Status, charge_point_status
from cp_pi.core.unlock import UnlockStatus, plan_unlock, unlock_status
from cp_pi.ocpp16.wire import utc_now
from cp_pi.station.auth_cache import AuthorizationCache
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector, Transaction
from cp_pi.station.outbox import CallError, Outbox, RetryPolicy
from cp_pi.store import QueuedMessage, Store, StoreError
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.charge_point")

#: UnlockConnector is answered within this many seconds whatever the hardware does.
UNLOCK_ANSWER_WITHIN = 9.5
#: Seconds between two looks at the lock chain while energy flows.
SUPERVISION_PERIOD = 1.0

StateListener = Callable[[], None]


class ChargePoint:
    def __init__(
        self,
        charge_point_id: str,
        *,
        store: Store,
        connectors: Iterable[Connector],
        boot_info: dict[str, str],
        authorization_key: str | None = None,
    ) -> None:
        self.id = charge_point_id
        self.store = store
        self.boot_info = boot_info
        self.connectors = {connector.id: connector for connector in connectors}
        self.configuration = ConfigurationKeys(
            store,
            number_of_connectors=len(self.connectors),
            has_lock=any(c.hardware.has_lock for c in self.connectors.values()),
            authorization_key=authorization_key,
        )
        self.authorization_cache = AuthorizationCache(store)
        self.outbox = Outbox(
            store,
            retry=RetryPolicy(
                attempts=lambda: self.configuration.get_int("TransactionMessageAttempts"),
                interval=lambda: float(
                    self.configuration.get_int("TransactionMessageRetryInterval")
                ),
            ),
            on_answer=self._on_transaction_answer,
        )
        availability = store.settings("availability")
        self.operative = availability.get("0", "Operative") == "Operative"
        for connector in self.connectors.values():
            connector.operative = availability.get(str(connector.id), "Operative") == "Operative"
            connector.cable_seen = connector.hardware.cable_present
        #: Set once BootNotification was accepted since the process (or a reset) started.
        self.registered = False
        self.csms_connected = False
        self.reboot_requested = asyncio.Event()
        self._notified: dict[int, tuple[Status, ErrorCode]] = {}
        self._listeners: list[StateListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

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
        for each in self.connectors.values():
            self._log_reading(each)
        if self.registered and self.csms_connected:
            for connector_id in (0, *self.connectors):
                connector = self.connectors.get(connector_id)
                if connector is not None and connector.busy.locked():
                    continue  # mid-sequence: report where it ends, not the steps
                current = self.status_of(connector_id)
                if self._notified.get(connector_id) != current:
                    self.send_status(connector_id, current)
        for listener in list(self._listeners):
            listener()

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
            "timestamp": utc_now(),
        }
        if connector_id == 0:
            if self.store.degraded is not None:
                payload["info"] = "message store in memory"
        else:
            reading = self.connectors[connector_id].hardware.reading()
            if reading is not ConnectorReading.GOOD_CONNECTION:
                payload["info"] = reading.value
        self.outbox.send("StatusNotification", payload)

    def recover(self) -> None:
        """Close what the last run left open: every contactor opens, each open transaction ends.

        A transaction still open in the store means the process or the power died during it. It
        ends with reason PowerLoss and the last persisted meter value; the StopTransaction waits in
        the outbox behind its StartTransaction and goes out after BootNotification.
        """
        for connector in self.connectors.values():
            connector.hardware.outputs_off()
        for record in self.store.open_transactions():
            meter_stop = (
                record.last_meter_wh if record.last_meter_wh is not None else record.meter_start
            )
            payload = {
                "transactionId": record.transaction_id if record.transaction_id is not None else -1,
                "meterStop": meter_stop,
                "timestamp": utc_now(),
                "reason": "PowerLoss",
            }
            self._end_and_queue_stop(record.ref, payload)
            log.warning(
                "transaction %s on connector %d was open at start-up: ended with PowerLoss",
                record.transaction_id or record.ref,
                record.connector_id,
            )

    # -- link events (called by the link) ------------------------------------------------------

    def on_registered(self, heartbeat_interval: int) -> None:
        self.registered = True
        if heartbeat_interval > 0:
            self.configuration.change("HeartbeatInterval", str(heartbeat_interval))
        self._notified.clear()  # after a boot the central system hears every status afresh

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
            if cable:
                connector.finishing = False
                if connector.awaiting_tag is not None and connector.transaction is None:
                    tag = connector.awaiting_tag
                    connector.stop_waiting_for_cable()
                    self._spawn(self.start_transaction(connector, tag))
            else:
                connector.finishing = False
                self._on_cable_removed(connector)
        self._check_safety(connector)
        self.refresh()

    def _check_safety(self, connector: Connector) -> None:
        """Energy stops at once when the lock chain can no longer be trusted while charging."""
        reading = connector.hardware.reading()
        if (
            reading.stops_charging
            and connector.transaction is not None
            and connector.hardware.contactor_closed
            and not connector.busy.locked()
        ):
            log.error("connector %d: %s while charging; stopping energy", connector.id, reading)
            self._spawn(self.stop_transaction(connector, "Other", unlock=False))

    async def _supervise(self, connector: Connector) -> None:
        """While energy flows, look at the lock chain every second: a pin that fails to read
        raises no edge event, and no charge may go on unwatched."""
        while True:
            await asyncio.sleep(SUPERVISION_PERIOD)
            self._check_safety(connector)

    def _on_cable_removed(self, connector: Connector) -> None:
        if connector.transaction is None:
            return
        if self.configuration.get_bool("StopTransactionOnEVSideDisconnect"):
            unlock = self.configuration.get_bool("UnlockConnectorOnEVSideDisconnect")
            self._spawn(self.stop_transaction(connector, "EVDisconnected", unlock=unlock))
        else:
            self._spawn(self._suspend(connector))

    async def _suspend(self, connector: Connector) -> None:
        async with connector.busy:
            await connector.hardware.open_contactor()
        self.refresh()

    # -- transactions --------------------------------------------------------------------------

    async def start_transaction(self, connector: Connector, id_tag: str) -> bool:
        """Lock the cable, record StartTransaction, then close the contactor (IEC 61851-1 order)."""
        async with connector.busy:
            started = await self._start_locked(connector, id_tag)
        self.refresh()
        return started

    async def _start_locked(self, connector: Connector, id_tag: str) -> bool:
        if connector.transaction is not None or not connector.hardware.cable_present:
            return False
        hardware = connector.hardware
        if hardware.has_lock:
            result = await hardware.lock()
            if not result.ok:
                log.error(
                    "connector %d: lock failed to engage (%s); no transaction",
                    connector.id,
                    result.fault,
                )
                return False
        meter_start = connector.meter.read_wh()
        tx = Transaction(
            ref=uuid.uuid4().hex,
            connector_id=connector.id,
            id_tag=id_tag,
            meter_start=meter_start,
            started_at=utc_now(),
        )
        start = {
            "connectorId": connector.id,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": tx.started_at,
        }

        def begin() -> None:
            self.store.begin_transaction(tx)
            self.outbox.send_transaction_message("StartTransaction", start, transaction_ref=tx.ref)

        self._durably(begin)
        connector.transaction = tx
        connector.finishing = False
        log.info("connector %d: transaction started for %s", connector.id, id_tag)
        if not await hardware.close_contactor():
            log.error("connector %d: contactor did not confirm closing", connector.id)
            await self._finish_locked(connector, "Other")
            return False
        tx.watchers = [
            asyncio.create_task(self._sample_meter(connector, tx)),
            asyncio.create_task(self._supervise(connector)),
        ]
        return True

    async def stop_transaction(
        self, connector: Connector, reason: str, *, id_tag: str | None = None, unlock: bool = True
    ) -> None:
        """Open the contactor, record StopTransaction, then release the cable."""
        async with connector.busy:
            opened = await self._finish_locked(connector, reason, id_tag=id_tag)
            if unlock and opened and connector.hardware.has_lock:
                await connector.hardware.unlock()
        self.refresh()

    async def _finish_locked(
        self, connector: Connector, reason: str, *, id_tag: str | None = None
    ) -> bool:
        """End the running transaction; True when the contactor is confirmed open."""
        opened = await connector.hardware.open_contactor()
        if not opened:
            log.error("connector %d: contactor did not confirm opening (welded?)", connector.id)
        tx = connector.transaction
        if tx is None:
            return opened
        for watcher in tx.watchers:
            watcher.cancel()
        meter_stop = connector.meter.read_wh()
        payload: dict[str, Any] = {
            "transactionId": tx.transaction_id if tx.transaction_id is not None else -1,
            "meterStop": meter_stop,
            "timestamp": utc_now(),
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        self._end_and_queue_stop(tx.ref, payload)
        connector.transaction = None
        connector.finishing = connector.hardware.cable_present
        log.info("connector %d: transaction ended (%s, %d Wh)", connector.id, reason, meter_stop)
        if connector.scheduled_operative is not None:
            connector.operative = connector.scheduled_operative
            connector.scheduled_operative = None
        return opened

    def _end_and_queue_stop(self, ref: str, payload: dict[str, Any]) -> None:
        def end() -> None:
            self.store.end_transaction(ref)
            self.outbox.send_transaction_message("StopTransaction", payload, transaction_ref=ref)

        self._durably(end)

    def _durably(self, write: Callable[[], None]) -> None:
        """Make ``write`` as one store transaction; when the disk fails, again in memory.

        The store switches itself to memory on a failed write (and says so); a transaction
        must not be lost to a full or read-only SD card.
        """
        try:
            with self.store.atomic():
                write()
        except StoreError:
            if self.store.degraded is None:
                raise
            with self.store.atomic():
                write()

    async def _sample_meter(self, connector: Connector, tx: Transaction) -> None:
        """Energy.Active.Import.Register at MeterValueSampleInterval, as transaction messages."""
        while True:
            interval = self.configuration.get_int("MeterValueSampleInterval")
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            wh = connector.meter.read_wh()
            self.store.update_transaction_meter(tx.ref, wh)
            self.outbox.send_transaction_message(
                "MeterValues",
                self._meter_values(connector, tx, wh, "Sample.Periodic"),
                transaction_ref=tx.ref,
            )

    def _meter_values(
        self, connector: Connector, tx: Transaction | None, wh: int, context: str
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "connectorId": connector.id,
            "meterValue": [
                {
                    "timestamp": utc_now(),
                    "sampledValue": [
                        {
                            "value": str(wh),
                            "context": context,
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        }
                    ],
                }
            ],
        }
        if tx is not None:
            payload["transactionId"] = tx.transaction_id if tx.transaction_id is not None else -1
        return payload

    async def _on_transaction_answer(self, message: QueuedMessage, result: dict[str, Any]) -> None:
        info = result.get("idTagInfo")
        id_tag = message.payload.get("idTag")
        if info is not None and id_tag and self.configuration.get_bool("AuthorizationCacheEnabled"):
            self.authorization_cache.update(id_tag, info)
        if message.action != "StartTransaction" or message.transaction_ref is None:
            return
        transaction_id = int(result["transactionId"])
        self.store.resolve_transaction_id(message.transaction_ref, transaction_id)
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is not None and tx.ref == message.transaction_ref:
                tx.transaction_id = transaction_id
                self.refresh()
                rejected = info is not None and info.get("status") != "Accepted"
                if rejected and self.configuration.get_bool("StopTransactionOnInvalidId"):
                    self._spawn(self.stop_transaction(connector, "DeAuthorized"))

    # -- authorization -------------------------------------------------------------------------

    async def authorize(self, id_tag: str) -> bool:
        cache_enabled = self.configuration.get_bool("AuthorizationCacheEnabled")
        cached = self.authorization_cache.lookup(id_tag, now=datetime.now(UTC))
        cached_ok = cache_enabled and cached is not None and cached.get("status") == "Accepted"
        if cached_ok and self.configuration.get_bool("LocalPreAuthorize"):
            return True
        if self.csms_connected and self.registered:
            try:
                result = await self.outbox.send("Authorize", {"idTag": id_tag})
            except (ConnectionError, TimeoutError, CallError) as error:
                log.warning("Authorize for %s failed (%s); deciding offline", id_tag, error)
            else:
                info = result["idTagInfo"]
                if cache_enabled:
                    self.authorization_cache.update(id_tag, info)
                return bool(info.get("status") == "Accepted")
        if cached_ok and self.configuration.get_bool("LocalAuthorizeOffline"):
            return True
        return self.configuration.get_bool("AllowOfflineTxForUnknownId")

    # -- local actions (RFID reader, bench) ----------------------------------------------------

    def swipe(self, connector_id: int, id_tag: str) -> None:
        """Present a tag: starts a transaction, or stops the one the same tag started."""
        connector = self.connectors[connector_id]
        tx = connector.transaction
        if tx is not None:
            if tx.id_tag == id_tag:
                self._spawn(self.stop_transaction(connector, "Local", id_tag=id_tag))
            else:
                log.info("connector %d: tag %s does not own the transaction", connector_id, id_tag)
            return
        self._spawn(self._authorize_and_start(connector, id_tag, check=True))

    async def _authorize_and_start(self, connector: Connector, id_tag: str, *, check: bool) -> None:
        if check and not await self.authorize(id_tag):
            log.info("connector %d: tag %s not authorized", connector.id, id_tag)
            return
        if connector.hardware.cable_present:
            await self.start_transaction(connector, id_tag)
            return
        self._await_cable(connector, id_tag)

    def _await_cable(self, connector: Connector, id_tag: str) -> None:
        connector.stop_waiting_for_cable()
        connector.awaiting_tag = id_tag
        timeout = self.configuration.get_int("ConnectionTimeOut")

        def give_up() -> None:
            log.info("connector %d: no cable within %d s for %s", connector.id, timeout, id_tag)
            connector.awaiting_tag = None
            connector.awaiting_timer = None
            self.refresh()

        connector.awaiting_timer = asyncio.get_running_loop().call_later(timeout, give_up)
        self.refresh()

    # -- requests from the central system ------------------------------------------------------

    async def unlock_connector(self, connector_id: int) -> UnlockStatus:
        """OCPP 1.6 UnlockConnector; see :mod:`cp_pi.core.unlock` for the decision."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNLOCK_ANSWER_WITHIN
        connector = self.connectors.get(connector_id)
        plan = plan_unlock(
            connector_exists=connector is not None,
            has_lock=connector is not None and connector.hardware.has_lock,
            reading=(
                connector.hardware.reading()
                if connector is not None
                else ConnectorReading.GOOD_CONNECTION
            ),
            transaction_running=connector is not None and connector.transaction is not None,
        )
        if connector is None or plan.answer is UnlockStatus.NOT_SUPPORTED:
            log.info("UnlockConnector %d: NotSupported", connector_id)
            return UnlockStatus.NOT_SUPPORTED
        try:
            async with asyncio.timeout_at(deadline):
                await connector.busy.acquire()
        except TimeoutError:
            log.error("UnlockConnector %d: connector busy past the deadline", connector_id)
            return UnlockStatus.UNLOCK_FAILED
        try:
            contactor_open = True
            if plan.stop_transaction and connector.transaction is not None:
                contactor_open = await self._finish_locked(connector, "UnlockCommand")
            result = None
            if plan.drive_lock and contactor_open:
                try:
                    async with asyncio.timeout_at(deadline):
                        result = await connector.hardware.unlock()
                except TimeoutError:
                    log.error("UnlockConnector %d: lock did not answer in time", connector_id)
            status = plan.answer or unlock_status(contactor_open=contactor_open, result=result)
        finally:
            connector.busy.release()
        log.info("UnlockConnector %d: %s", connector_id, status.value)
        self.refresh()
        return status

    def remote_start(self, id_tag: str, connector_id: int | None) -> str:
        connector = self._connector_for_remote_start(connector_id)
        if connector is None:
            return "Rejected"
        check = self.configuration.get_bool("AuthorizeRemoteTxRequests")
        self._spawn(self._authorize_and_start(connector, id_tag, check=check))
        return "Accepted"

    def _connector_for_remote_start(self, connector_id: int | None) -> Connector | None:
        if connector_id is not None:
            candidates = [self.connectors[connector_id]] if connector_id in self.connectors else []
        else:  # the first free connector, preferring one with a cable in
            candidates = sorted(
                self.connectors.values(), key=lambda c: not c.hardware.cable_present
            )
        for connector in candidates:
            status, _ = connector.status()
            if (
                self.operative
                and connector.transaction is None
                and not connector.busy.locked()
                and status in (Status.AVAILABLE, Status.PREPARING, Status.FINISHING)
            ):
                return connector
        return None

    def remote_stop(self, transaction_id: int) -> str:
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                self._spawn(self.stop_transaction(connector, "Remote"))
                return "Accepted"
        return "Rejected"

    def change_availability(self, connector_id: int, kind: str) -> str:
        operative = kind == "Operative"
        if connector_id == 0:
            targets = list(self.connectors.values())
            self.operative = operative
        elif connector_id in self.connectors:
            targets = [self.connectors[connector_id]]
        else:
            return "Rejected"
        keys = [str(connector_id)] + ([str(c.id) for c in targets] if connector_id == 0 else [])

        def persist() -> None:
            for key in keys:
                self.store.put_setting("availability", key, kind)

        self._durably(persist)
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and connector.operative != operative:
                connector.scheduled_operative = operative
                scheduled = True
            else:
                connector.operative = operative
        self.refresh()
        return "Scheduled" if scheduled else "Accepted"

    def reset(self, kind: str) -> str:
        reason = "HardReset" if kind == "Hard" else "SoftReset"
        self._spawn(self._reset(reason))
        return "Accepted"

    async def _reset(self, reason: str) -> None:
        log.warning("%s requested: ending transactions and booting again", reason)
        await asyncio.gather(
            *(
                self.stop_transaction(connector, reason)
                for connector in self.connectors.values()
                if connector.transaction is not None
            )
        )
        try:
            async with asyncio.timeout(30):
                await self.outbox.drained()
        except TimeoutError:
            log.warning("reset: transaction messages still queued; they are kept")
        self.reboot_requested.set()

    def trigger_message(self, requested: str, connector_id: int | None) -> str:
        if connector_id is not None and connector_id not in self.connectors and connector_id != 0:
            return "Rejected"
        if requested == "BootNotification":
            self._spawn(self._send_boot_again())
        elif requested == "Heartbeat":
            self.outbox.send("Heartbeat", {})
        elif requested == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *self.connectors]
            for cid in ids:
                self.send_status(cid, self.status_of(cid))
        elif requested == "MeterValues":
            ids = [connector_id] if connector_id else list(self.connectors)
            for cid in ids:
                connector = self.connectors[cid]
                wh = connector.meter.read_wh()
                payload = self._meter_values(connector, connector.transaction, wh, "Trigger")
                self.outbox.send("MeterValues", payload)
        else:
            return "NotImplemented"
        return "Accepted"

    async def _send_boot_again(self) -> None:
        try:
            result = await self.outbox.send("BootNotification", self.boot_info)
        except (ConnectionError, TimeoutError, CallError) as error:
            log.warning("triggered BootNotification failed: %s", error)
            return
        if result.get("status") == "Accepted":
            self.configuration.change("HeartbeatInterval", str(result["interval"]))

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
            "connectors": [self._connector_state(c) for c in self.connectors.values()],
        }

    def _connector_state(self, connector: Connector) -> dict[str, Any]:
        hardware = connector.hardware
        status, error = connector.status()
        tx = connector.transaction
        position = hardware.lock_position
        return {
            "id": connector.id,
            "cable": hardware.cable_present,
            "has_lock": hardware.has_lock,
            "locked": position is not None and position.value == "engaged",
            "contactor_closed": hardware.contactor_closed,
            "status": status.value,
            "error_code": error.value,
            "transaction_id": None if tx is None else tx.transaction_id,
            "id_tag": None if tx is None else tx.id_tag,
            "meter_wh": connector.meter.read_wh(),
            "connector_status": hardware.reading().value,
            "lock_drives": hardware.lock_drives,
            "operative": connector.operative,
        }

    # -- housekeeping --------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("charge point task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop background work and put every output in its safe state (contactor open)."""
        tasks = list(self._tasks)
        for connector in self.connectors.values():
            connector.stop_waiting_for_cable()
            connector.hardware.outputs_off()
            if connector.transaction is not None:
                tasks.extend(connector.transaction.watchers)
        await cancel_and_wait(tasks)
