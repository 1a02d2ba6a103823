"""One charge point's connection to the central system: the central system's end of the peer.

The shared :class:`~cp_pi.ocpp16.peer.Peer` matches answers to requests by unique id with one
future each, so several commands may be outstanding at once, which lets a test prove the charge
point answers one request while another (an unlock) is still working. This end adds that every
frame is recorded where it crosses the websocket, malformed text and CALLERRORs included, and
that a test may plan a request to go unanswered or refused.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cp_pi.core.routing import on
from cp_pi.csms.records import CsmsTransaction, FrameJournal, MeterValuesRecord
from cp_pi.ocpp16.peer import CallErrorReceived, InvalidAnswer, Peer
from cp_pi.ocpp16.wire import utc_now

if TYPE_CHECKING:
    from cp_pi.csms.server import CentralSystem

log = logging.getLogger("cp_pi.csms")

__all__ = ["CallErrorReceived", "ChargePointSession", "InvalidAnswer"]


class ChargePointSession(Peer):
    def __init__(
        self, charge_point_id: str, connection: ServerConnection, central: CentralSystem
    ) -> None:
        super().__init__(charge_point_id, connection, logger=log)
        self._central = central
        self._journal: FrameJournal = central.journal

    # -- framing -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read until the connection closes, then fail whatever still waits for an answer."""
        # The charge point went away, or the central system is stopping.
        with contextlib.suppress(ConnectionClosed, ConnectionError):
            await super().start()

    async def receive(self, text: str | bytes) -> None:
        await super().receive(text if isinstance(text, str) else text.decode(errors="replace"))

    def observe(self, direction: str, text: str | bytes, frame: list[Any] | None) -> None:
        shown = text if isinstance(text, str) else text.decode(errors="replace")
        self._journal.record(self.id, "rx" if direction == "rx" else "tx", shown)

    async def take_call(self, message: Call) -> None:
        """Run the handler, unless a test planned this request to go unanswered or refused."""
        planned = self._central.misbehaviour.get(message.action)
        if planned:
            misbehaviour = planned.pop(0)
            log.warning("%s: %s deliberately not handled", self.id, message.action)
            if misbehaviour.code is not None:
                await self.send_callerror(message, misbehaviour.code, "refused on request")
            return
        await self.answer_call(message)

    async def command(self, request: Any, timeout: float) -> dict[str, Any]:
        """Send a typed `ocpp.v16.call` payload, checked against the schema both ways."""
        payload: dict[str, Any] = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
        return await self.request(type(request).__name__, payload, timeout)

    # -- the Core profile, as a central system -------------------------------------------------

    @on(Action.boot_notification)
    def _on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=utc_now(),
            interval=self._central.heartbeat_interval,
            status=self._central.boot_status,
        )

    @on(Action.heartbeat)
    def _on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=utc_now())

    @on(Action.status_notification)
    def _on_status_notification(
        self, connector_id: int, status: str, error_code: str, **_: Any
    ) -> call_result.StatusNotification:
        self._central.statuses[(self.id, connector_id)] = (status, error_code)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def _on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @on(Action.start_transaction)
    def _on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> call_result.StartTransaction:
        ids = self._central.transaction_ids
        key = (self.id, connector_id, id_tag, timestamp, meter_start)
        # A StartTransaction seen before was resent because its answer was lost (OCPP 1.6
        # section 3.7): one transaction, one id.
        transaction_id = ids.get(key)
        if transaction_id is None:
            transaction_id = ids[key] = len(ids) + 1
            self._central.transactions[transaction_id] = CsmsTransaction(
                self.id, connector_id, id_tag, meter_start, started_at=timestamp
            )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(id_tag)
        )

    @on(Action.stop_transaction)
    def _on_stop_transaction(
        self,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        id_tag: str | None = None,
        reason: str | None = None,
        **_: Any,
    ) -> call_result.StopTransaction:
        record = self._central.transactions.get(transaction_id)
        if record is None:
            log.warning("%s: StopTransaction for unknown transaction %s", self.id, transaction_id)
        else:
            record.meter_stop, record.stopped_at, record.reason = meter_stop, timestamp, reason
        return call_result.StopTransaction(
            id_tag_info=None if id_tag is None else self._id_tag_info(id_tag)
        )

    @on(Action.meter_values)
    def _on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> call_result.MeterValues:
        # The package hands handlers snake_case keys; keep the samples as they were on the wire.
        samples: list[dict[str, Any]] = snake_to_camel_case(meter_value)
        self._central.meter_values.append(
            MeterValuesRecord(self.id, connector_id, transaction_id, samples)
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def _on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def _on_diagnostics_status(self, **_: Any) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def _on_firmware_status(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    def _id_tag_info(self, id_tag: str) -> IdTagInfo:
        status = self._central.tag_statuses.get(id_tag)
        if status is None:
            tags = self._central.authorized_tags
            status = "Accepted" if tags is None or id_tag in tags else "Invalid"
        return IdTagInfo(status=status, parent_id_tag=self._central.parent_id_tags.get(id_tag))
