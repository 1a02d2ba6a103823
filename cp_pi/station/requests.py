"""What the central system asks of the charge point: the answers, and the work that follows.

The OCPP session calls in here (through :class:`~cp_pi.station.charge_point.ChargePoint`) and
sends the answer as the CALLRESULT. Work that outlives the answer (a remote start, a reset) runs in
the background, and the CALLs it makes wait in the outbox until the CALLRESULT is out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cp_pi.core.reading import ConnectorReading
from cp_pi.core.status import Status
from cp_pi.core.unlock import UnlockStatus, plan_unlock, unlock_status
from cp_pi.station.connector import Connector
from cp_pi.station.outbox import CallError
from cp_pi.station.transactions import Spawn, Transactions, durably, meter_values

if TYPE_CHECKING:
    from cp_pi.station.charge_point import ChargePoint

log = logging.getLogger("cp_pi.charge_point")

#: UnlockConnector is answered within this many seconds whatever the hardware does.
UNLOCK_ANSWER_WITHIN = 9.5


class CsmsRequests:
    def __init__(
        self, charge_point: ChargePoint, *, transactions: Transactions, spawn: Spawn
    ) -> None:
        self._cp = charge_point
        self._transactions = transactions
        self._spawn = spawn

    async def unlock_connector(self, connector_id: int) -> UnlockStatus:
        """OCPP 1.6 UnlockConnector; see :mod:`cp_pi.core.unlock` for the decision."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNLOCK_ANSWER_WITHIN
        connector = self._cp.connectors.get(connector_id)
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
                contactor_open = await self._transactions.finish_locked(connector, "UnlockCommand")
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
        self._cp.refresh()
        return status

    def remote_start(self, id_tag: str, connector_id: int | None) -> str:
        connector = self._connector_for_remote_start(connector_id)
        if connector is None:
            return "Rejected"
        check = self._cp.configuration.get_bool("AuthorizeRemoteTxRequests")
        self._spawn(self._transactions.authorize_and_start(connector, id_tag, check=check))
        return "Accepted"

    def _connector_for_remote_start(self, connector_id: int | None) -> Connector | None:
        connectors = self._cp.connectors
        if connector_id is not None:
            candidates = [connectors[connector_id]] if connector_id in connectors else []
        else:  # the first free connector, preferring one with a cable in
            candidates = sorted(connectors.values(), key=lambda c: not c.hardware.cable_present)
        for connector in candidates:
            status, _ = connector.status()
            if (
                self._cp.operative
                and connector.transaction is None
                and not connector.busy.locked()
                and status in (Status.AVAILABLE, Status.PREPARING, Status.FINISHING)
            ):
                return connector
        return None

    def remote_stop(self, transaction_id: int) -> str:
        for connector in self._cp.connectors.values():
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                self._spawn(self._transactions.stop(connector, "Remote"))
                return "Accepted"
        return "Rejected"

    def change_availability(self, connector_id: int, kind: str) -> str:
        cp = self._cp
        operative = kind == "Operative"
        if connector_id == 0:
            targets = list(cp.connectors.values())
            cp.operative = operative
        elif connector_id in cp.connectors:
            targets = [cp.connectors[connector_id]]
        else:
            return "Rejected"
        keys = [str(connector_id)] + ([str(c.id) for c in targets] if connector_id == 0 else [])

        def persist() -> None:
            for key in keys:
                cp.store.put_setting("availability", key, kind)

        durably(cp.store, persist)
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and connector.operative != operative:
                connector.scheduled_operative = operative
                scheduled = True
            else:
                connector.operative = operative
        cp.refresh()
        return "Scheduled" if scheduled else "Accepted"

    def reset(self, kind: str) -> str:
        reason = "HardReset" if kind == "Hard" else "SoftReset"
        self._spawn(self._reset(reason))
        return "Accepted"

    async def _reset(self, reason: str) -> None:
        log.warning("%s requested: ending transactions and booting again", reason)
        await asyncio.gather(
            *(
                self._transactions.stop(connector, reason)
                for connector in self._cp.connectors.values()
                if connector.transaction is not None
            )
        )
        try:
            async with asyncio.timeout(30):
                await self._cp.outbox.drained()
        except TimeoutError:
            log.warning("reset: transaction messages still queued; they are kept")
        self._cp.reboot_requested.set()

    def trigger_message(self, requested: str, connector_id: int | None) -> str:
        cp = self._cp
        if connector_id is not None and connector_id not in cp.connectors and connector_id != 0:
            return "Rejected"
        if requested == "BootNotification":
            self._spawn(self._send_boot_again())
        elif requested == "Heartbeat":
            cp.outbox.send("Heartbeat", {})
        elif requested == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *cp.connectors]
            for cid in ids:
                cp.send_status(cid, cp.status_of(cid))
        elif requested == "MeterValues":
            ids = [connector_id] if connector_id else list(cp.connectors)
            for cid in ids:
                connector = cp.connectors[cid]
                wh = connector.meter.read_wh()
                tx = connector.transaction
                # Volatile, so never patched later: without the central system's id, none.
                known = tx if tx is not None and tx.transaction_id is not None else None
                payload = meter_values(connector, known, wh, "Trigger")
                cp.outbox.send("MeterValues", payload)
        else:
            return "NotImplemented"
        return "Accepted"

    async def _send_boot_again(self) -> None:
        try:
            result = await self._cp.outbox.send("BootNotification", self._cp.boot_info)
        except (ConnectionError, TimeoutError, CallError) as error:
            log.warning("triggered BootNotification failed: %s", error)
            return
        if result.get("status") == "Accepted":
            self._cp.configuration.change("HeartbeatInterval", str(result["interval"]))
