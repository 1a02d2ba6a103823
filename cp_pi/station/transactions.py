"""Transactions: who may charge, starting and stopping, and what the store and the CSMS hear of it.

A transaction is written to the store together with its StartTransaction or StopTransaction, in
one store transaction (:func:`durably`), so a crash leaves either both or neither; the messages
wait in the outbox until the central system answers, and its answers (transaction ids, idTagInfo)
come back here. Every sequence runs under its connector's ``busy`` lock, and the charge point is
told to refresh its statuses once the sequence is over.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from ocpp.v16.enums import ConfigurationKey as K
from ocpp.v16.enums import Reason

from cp_pi.core.outbox import PROVISIONAL_TRANSACTION_ID
from cp_pi.station.auth_cache import AuthorizationCache
from cp_pi.station.clock import Clock
from cp_pi.station.configuration import ConfigurationKeys
from cp_pi.station.connector import Connector, Transaction
from cp_pi.station.local_list import LocalAuthList
from cp_pi.station.metering import Metering
from cp_pi.station.outbox import CallError, Outbox, RefusedAnswer
from cp_pi.station.reservations import Reservations
from cp_pi.store import QueuedMessage, Store, StoreError, transaction_name

log = logging.getLogger("cp_pi.charge_point")

#: The transaction ids the store can keep: SQLite's signed 64-bit integers.
SQLITE_INT_BOUND = 2**63

#: How many tags' groups from Authorize answers are kept (the newest).
PARENTS_HEARD = 256

#: Runs a coroutine in the background, owned (and cancelled on close) by the charge point.
Spawn = Callable[[Coroutine[Any, Any, object]], None]


def durably(store: Store, write: Callable[[], None]) -> None:
    """Make ``write`` as one store transaction; when the disk fails, again in memory.

    The store switches itself to memory on a failed write (and says so); a transaction
    must not be lost to a full or read-only SD card.
    """
    try:
        with store.atomic():
            write()
    except StoreError:
        if store.degraded is None:
            raise
        with store.atomic():
            write()


class Transactions:
    def __init__(
        self,
        *,
        store: Store,
        outbox: Outbox,
        configuration: ConfigurationKeys,
        authorization_cache: AuthorizationCache,
        local_list: LocalAuthList,
        reservations: Reservations,
        metering: Metering,
        connectors: dict[int, Connector],
        clock: Clock,
        csms_reachable: Callable[[], bool],
        refresh: Callable[[], None],
        spawn: Spawn,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._configuration = configuration
        self._authorization_cache = authorization_cache
        self._local_list = local_list
        self._reservations = reservations
        #: parentIdTags the central system named in the latest Authorize answers, for
        #: reservations of a group when the cache is off (OCPP 1.6 section 5.13).
        self._parents_heard: dict[str, str | None] = {}
        self._metering = metering
        self._connectors = connectors
        self._clock = clock
        self._csms_reachable = csms_reachable
        self._refresh = refresh
        self._spawn = spawn

    # -- authorization -------------------------------------------------------------------------

    async def authorize(self, id_tag: str) -> bool:
        accepted, _ = await self.look_up(id_tag)
        return accepted

    async def look_up(self, id_tag: str) -> tuple[bool, Mapping[str, Any] | None]:
        """Whether ``id_tag`` may charge, and the idTagInfo that says so (None when an offline
        rule decided without one).

        The Local Authorization List comes first, then the cache, then the central system
        (OCPP 1.6 section 3.5): a listed tag is never cached, and offline the list decides
        for its tags, Accepted or not, while LocalAuthorizeOffline is true.
        """
        cache_enabled = self._configuration.get_bool(K.authorization_cache_enabled)
        listed = self._local_list.lookup(id_tag, now=self._clock.now())
        if listed is not None:
            listed_ok = listed.get("status") == "Accepted"
            if listed_ok and self._configuration.get_bool(K.local_pre_authorize):
                return True, listed
            if not self._csms_reachable() and self._configuration.get_bool(
                K.local_authorize_offline
            ):
                return listed_ok, listed
        cached = (
            None
            if listed is not None
            else self._authorization_cache.lookup(id_tag, now=self._clock.now())
        )
        cached_ok = cache_enabled and cached is not None and cached.get("status") == "Accepted"
        if cached_ok and self._configuration.get_bool(K.local_pre_authorize):
            return True, cached
        if self._csms_reachable():
            try:
                result = await self._outbox.send("Authorize", {"idTag": id_tag})
            except (ConnectionError, TimeoutError, CallError) as error:
                log.warning("Authorize for %s failed (%s); deciding offline", id_tag, error)
            else:
                info = result["idTagInfo"]
                self._hear_parent(id_tag, info.get("parentIdTag"))
                if cache_enabled and listed is None:
                    self._authorization_cache.update(id_tag, info)
                return info.get("status") == "Accepted", info
        if cached_ok and self._configuration.get_bool(K.local_authorize_offline):
            return True, cached
        return self._configuration.get_bool(K.allow_offline_tx_for_unknown_id), None

    def _cached_parent(self, id_tag: str) -> str | None:
        """The tag's parentIdTag as known here: the local list, the cache, an Authorize answer."""
        now = self._clock.now()
        listed = self._local_list.lookup(id_tag, now=now)
        if listed is not None:
            return listed.get("parentIdTag")
        if self._configuration.get_bool(K.authorization_cache_enabled):
            cached = self._authorization_cache.lookup(id_tag, now=now)
            if cached is not None:
                return cached.get("parentIdTag")
        return self._parents_heard.get(id_tag.upper())

    def _hear_parent(self, id_tag: str, parent: str | None) -> None:
        heard = self._parents_heard
        heard.pop(id_tag.upper(), None)
        heard[id_tag.upper()] = parent
        if len(heard) > PARENTS_HEARD:
            del heard[next(iter(heard))]  # the oldest: a driver's group is asked at their swipe

    def _knows_parent(self, id_tag: str) -> bool:
        return self._cached_parent(id_tag) is not None or id_tag.upper() in self._parents_heard

    def reservation_refuses(self, connector: Connector, id_tag: str) -> bool:
        """The connector is held for another tag, or for a group ``id_tag`` is known not to be
        of (a tag whose group is not known yet may still be of it)."""
        held = connector.reservation
        if held is None or held.serves(id_tag, self._cached_parent(id_tag)):
            return False
        return held.parent_id_tag is None or self._knows_parent(id_tag)

    async def _admitted(self, connector: Connector, id_tag: str) -> bool:
        """Whether a reservation on ``connector`` lets ``id_tag`` start there. The tag's group
        is looked up only for a reservation of a group, with Authorize when neither the list nor
        the cache knows it (section 5.13); another tag is refused without asking anyone."""
        held = connector.reservation
        if held is None:
            return True
        needs_group = held.parent_id_tag is not None and not held.serves(id_tag, None)
        if needs_group and not self._knows_parent(id_tag):
            await self.look_up(id_tag)
        held = connector.reservation  # it may have ended meanwhile
        if held is None or held.serves(id_tag, self._cached_parent(id_tag)):
            return True
        log.info(
            "connector %d: reserved (reservation %d): tag %s refused",
            connector.id,
            held.reservation_id,
            id_tag,
        )
        return False

    async def authorize_and_start(self, connector: Connector, id_tag: str, *, check: bool) -> None:
        if not await self._admitted(connector, id_tag):
            return
        if check and not await self.authorize(id_tag):
            log.info("connector %d: tag %s not authorized", connector.id, id_tag)
            return
        if connector.hardware.cable_present:
            await self.start(connector, id_tag)
            return
        self._await_cable(connector, id_tag)

    def _await_cable(self, connector: Connector, id_tag: str) -> None:
        connector.stop_waiting_for_cable()
        connector.awaiting_tag = id_tag
        timeout = self._configuration.get_int(K.connection_time_out)

        def give_up() -> None:
            log.info("connector %d: no cable within %d s for %s", connector.id, timeout, id_tag)
            connector.awaiting_tag = None
            connector.awaiting_timer = None
            self._refresh()

        connector.awaiting_timer = asyncio.get_running_loop().call_later(timeout, give_up)
        self._refresh()

    # -- start and stop ------------------------------------------------------------------------

    async def start(self, connector: Connector, id_tag: str) -> bool:
        """Lock the cable, record StartTransaction, then close the contactor (IEC 61851-1 order)."""
        async with connector.busy:
            started = await self._start_locked(connector, id_tag)
        self._refresh()
        return started

    async def _start_locked(self, connector: Connector, id_tag: str) -> bool:
        """The start sequence; the cable is looked at again after every step that waits, since
        a cable pulled meanwhile raises its event while this sequence holds the connector."""
        if connector.transaction is not None or not connector.hardware.cable_present:
            return False
        hardware = connector.hardware
        if not await hardware.rcd_self_test():
            log.error(
                "connector %d: residual current self-test failed; no transaction", connector.id
            )
            return False
        if hardware.has_lock:
            result = await hardware.lock()
            if not result.ok:
                log.error(
                    "connector %d: lock failed to engage (%s); no transaction",
                    connector.id,
                    result.fault,
                )
                return False
            if not hardware.cable_in:
                log.warning(
                    "connector %d: cable removed as the lock engaged: no transaction", connector.id
                )
                return False  # the empty socket's lock is released once the sequence is over
        await connector.meter.refresh()  # the register at this moment, not at the last poll
        meter_start = connector.meter.read_wh()
        if not connector.meter.ok and connector.meter_required:
            log.error(
                "connector %d: meter not answering and meter.on_failure is stop: no transaction",
                connector.id,
            )
            if hardware.has_lock:
                await hardware.unlock()  # the cable is its owner's again
            return False
        if not connector.meter.ok:
            log.warning(
                "connector %d: meter unreadable: meterStart is its last good reading, %d Wh",
                connector.id,
                meter_start,
            )
        tx = Transaction(
            ref=uuid.uuid4().hex,
            connector_id=connector.id,
            id_tag=id_tag,
            meter_start=meter_start,
            started_at=self._clock.timestamp(),
            parent_id_tag=self._cached_parent(id_tag),
        )
        start: dict[str, Any] = {
            "connectorId": connector.id,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": tx.started_at,
        }
        reservation = self._reservations.claim(connector, id_tag, tx.parent_id_tag)
        if reservation is not None:
            start["reservationId"] = reservation.reservation_id

        def begin() -> None:
            self._store.begin_transaction(tx)
            if reservation is not None:
                self._reservations.consume(reservation)
            self._outbox.send_transaction_message("StartTransaction", start, transaction_ref=tx.ref)

        durably(self._store, begin)
        connector.transaction = tx
        connector.finishing = False
        log.info("connector %d: %s started for %s", connector.id, tx.name, id_tag)
        if hardware.has_pilot:
            connector.drive_pilot()  # the wave: the vehicle may now ask for energy
            if not await hardware.wait_for_energy(hardware.ev_wait) and hardware.cable_in:
                log.info(
                    "connector %d: the vehicle does not ask for energy (pilot %s, %s)",
                    connector.id,
                    hardware.pilot_state,
                    "wave on" if hardware.pwm_on else "no wave",
                )
                self._follow(connector, tx)
                return True
        closing = await hardware.close_contactor()
        closed = closing.ok
        if not hardware.cable_in:
            log.warning(
                "connector %d: cable removed as the contactor closed: stopping %s",
                connector.id,
                tx.name,
            )
            await self.finish_locked(connector, Reason.ev_disconnected)
            return False
        if not closed and closing.refused is not None and not hardware.energy_allowed():
            log.info("connector %d: the vehicle stopped asking for energy", connector.id)
        elif not closed:
            log.error(
                "connector %d: contactor did not confirm closing; ending %s", connector.id, tx.name
            )
            await self.finish_locked(connector, Reason.other)
            return False
        self._follow(connector, tx)
        return True

    def _follow(self, connector: Connector, tx: Transaction) -> None:
        tx.watchers = [
            asyncio.create_task(self._metering.follow(connector, tx)),
        ]

    async def energise(self, connector: Connector) -> None:
        """Close the contactor for a vehicle that asks for energy again (C2) while its
        transaction runs; a contactor that does not confirm ends the transaction."""
        try:
            async with connector.busy:
                connector.energising = False
                if not connector.may_energise():
                    return
                result = await connector.hardware.close_contactor()
                tx = connector.transaction
                if not result.ok and result.refused is None and tx is not None:
                    log.error(
                        "connector %d: contactor did not confirm closing; ending %s",
                        connector.id,
                        tx.name,
                    )
                    await self.finish_locked(connector, Reason.other)
        finally:
            connector.energising = False
        self._refresh()

    async def stop_for_group(self, connector: Connector, tx: Transaction, id_tag: str) -> None:
        """Another tag of the starting tag's group (the same parentIdTag, OCPP 1.6 section 3.10)
        stops the transaction, and is named in StopTransaction (TC_069)."""
        accepted, info = await self.look_up(id_tag)
        parent = None if info is None else info.get("parentIdTag")
        owner = tx.parent_id_tag
        if not (accepted and parent and owner and parent.upper() == owner.upper()):
            log.info("connector %d: tag %s is not of the transaction's group", connector.id, id_tag)
            return
        if connector.transaction is tx:
            await self.stop(connector, Reason.local, id_tag=id_tag)

    async def stop(
        self,
        connector: Connector,
        reason: Reason,
        *,
        id_tag: str | None = None,
        unlock: bool = True,
    ) -> None:
        """Open the contactor, record StopTransaction, then release the cable."""
        async with connector.busy:
            opened = await self.finish_locked(connector, reason, id_tag=id_tag)
            if unlock and opened and connector.hardware.has_lock:
                await connector.hardware.unlock()
        self._refresh()

    async def finish_locked(
        self, connector: Connector, reason: Reason, *, id_tag: str | None = None
    ) -> bool:
        """End the running transaction; True when the contactor is confirmed open.

        The caller holds the connector's ``busy`` lock.
        """
        connector.hardware.offer(None)  # the wave stops: the vehicle stops drawing
        opened = (await connector.hardware.open_contactor()).ok
        if not opened:
            log.error("connector %d: contactor did not confirm opening (welded?)", connector.id)
        tx = connector.transaction
        if tx is None:
            return opened
        for watcher in tx.watchers:
            watcher.cancel()
        await connector.meter.refresh()
        meter_stop = connector.meter.read_wh()
        if not connector.meter.ok:
            log.warning(
                "connector %d: meter unreadable: meterStop is its last good reading, %d Wh",
                connector.id,
                meter_stop,
            )
        payload: dict[str, Any] = {
            "transactionId": (
                tx.transaction_id if tx.transaction_id is not None else PROVISIONAL_TRANSACTION_ID
            ),
            "meterStop": meter_stop,
            "timestamp": self._clock.timestamp(),
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        if transaction_data := self._metering.transaction_data(connector, tx):
            payload["transactionData"] = transaction_data
        self._end_and_queue_stop(tx.ref, payload)
        connector.transaction = None
        connector.ended_for = tx.id_tag
        connector.finishing = connector.hardware.cable_present
        log.info(
            "connector %d: %s ended (%s, %d Wh charged)",
            connector.id,
            tx.name,
            reason,
            meter_stop - tx.meter_start,
        )
        if connector.scheduled_operative is not None:
            connector.operative = connector.scheduled_operative
            connector.scheduled_operative = None
        return opened

    def end_left_open(self) -> None:
        """End the transactions the last run left open in the store.

        A transaction still open in the store means the process or the power died during it. It
        ends with reason PowerLoss and the last persisted meter value; the StopTransaction waits in
        the outbox behind its StartTransaction and goes out after BootNotification.
        """
        for record in self._store.open_transactions():
            meter_stop = (
                record.last_meter_wh if record.last_meter_wh is not None else record.meter_start
            )
            payload = {
                "transactionId": (
                    record.transaction_id
                    if record.transaction_id is not None
                    else PROVISIONAL_TRANSACTION_ID
                ),
                "meterStop": meter_stop,
                "timestamp": self._clock.timestamp(),
                "reason": Reason.power_loss,
            }
            self._end_and_queue_stop(record.ref, payload)
            log.warning(
                "%s on connector %d was open at start-up: ended with PowerLoss",
                record.name,
                record.connector_id,
            )

    def _end_and_queue_stop(self, ref: str, payload: dict[str, Any]) -> None:
        def end() -> None:
            self._store.end_transaction(ref)
            self._outbox.send_transaction_message("StopTransaction", payload, transaction_ref=ref)

        durably(self._store, end)

    # -- while it runs -------------------------------------------------------------------------

    async def suspend(self, connector: Connector) -> None:
        """Stop the energy and keep the transaction (and the cable locked)."""
        async with connector.busy:
            await connector.hardware.open_contactor()
        self._refresh()

    async def on_answer(self, message: QueuedMessage, result: dict[str, Any]) -> None:
        """The central system answered a transaction message: learn its idTagInfo and id.

        A transaction id the store cannot keep is refused (:class:`RefusedAnswer`): the answer
        counts as a failed attempt, like a CALLERROR, and delivery goes on.
        """
        if message.action == "StartTransaction":
            transaction_id = result.get("transactionId")
            storable = (
                isinstance(transaction_id, int)
                and -SQLITE_INT_BOUND <= transaction_id < SQLITE_INT_BOUND
            )
            if not storable or transaction_id == PROVISIONAL_TRANSACTION_ID:
                raise RefusedAnswer(f"transactionId {transaction_id!r} cannot be kept")
        info = result.get("idTagInfo")
        id_tag = message.payload.get("idTag")
        if (
            info is not None
            and id_tag
            and self._configuration.get_bool(K.authorization_cache_enabled)
            and self._local_list.lookup(id_tag, now=self._clock.now()) is None
        ):
            self._authorization_cache.update(id_tag, info)
        if message.action != "StartTransaction" or message.transaction_ref is None:
            return
        transaction_id = int(result["transactionId"])
        log.info(
            "%s is transaction %d", transaction_name(None, message.transaction_ref), transaction_id
        )
        self._store.resolve_transaction_id(message.transaction_ref, transaction_id)
        for connector in self._connectors.values():
            tx = connector.transaction
            if tx is not None and tx.ref == message.transaction_ref:
                tx.transaction_id = transaction_id
                if info is not None:
                    tx.parent_id_tag = info.get("parentIdTag")
                self._refresh()
                if info is None or info.get("status") == "Accepted":
                    return
                if self._configuration.get_bool(K.stop_transaction_on_invalid_id):
                    self._spawn(self.stop(connector, Reason.de_authorized))
                else:
                    log.warning(
                        "connector %d: %s is %s; energy stopped, the transaction stays open",
                        connector.id,
                        tx.id_tag,
                        info.get("status"),
                    )
                    tx.deauthorized = True
                    self._spawn(self.suspend(connector))
