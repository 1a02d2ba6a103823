"""One charge point's connection to the central system, on the `ocpp` package's routing.

Two departures from the package's `ChargePoint`, both so tests can see and steer the exchange:

* frames are recorded where they cross the websocket (`route_message`, `_send`), so malformed
  text and CALLERRORs land in the record like any other frame;
* answers are matched to requests by unique id with one future each, instead of the package's
  single response queue behind a lock. Several CALLs may then be outstanding at once, which lets
  a test prove the charge point answers one request while another (an unlock) is still working.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, validate_payload
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cp_pi.csms.records import FrameJournal, MeterValuesRecord, TransactionRecord
from cp_pi.ocpp16.errors import (
    CALL,
    CALLERROR,
    FrameError,
    check_frame,
)
from cp_pi.ocpp16.peer import Ocpp16Peer
from cp_pi.ocpp16.wire import on, utc_now

if TYPE_CHECKING:
    from cp_pi.csms.server import CentralSystem

log = logging.getLogger("cp_pi.csms")


class CallErrorReceived(Exception):
    """The charge point answered a command with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action} answered with CALLERROR {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class InvalidAnswer(Exception):
    """The charge point's CALLRESULT breaks the OCPP 1.6 schema for that action."""


class ChargePointSession(Ocpp16Peer):
    def __init__(
        self, charge_point_id: str, connection: ServerConnection, central: CentralSystem
    ) -> None:
        super().__init__(charge_point_id, connection, logger=log)
        self.connection = connection
        self._central = central
        self._journal: FrameJournal = central.journal
        self._answers: dict[str, asyncio.Future[list[Any]]] = {}

    # -- framing -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read until the connection closes, then fail whatever still waits for an answer."""
        try:
            async for message in self.connection:
                text = message if isinstance(message, str) else message.decode(errors="replace")
                try:
                    await self.route_message(text)
                except ConnectionError:
                    continue  # an answer found the link closing: read what arrived before it
        except (ConnectionClosed, ConnectionError):
            pass  # the charge point went away, or the central system is stopping
        finally:
            for waiter in self._answers.values():
                if not waiter.done():
                    waiter.set_exception(
                        ConnectionError(f"{self.id} disconnected before answering")
                    )
            self._answers.clear()

    async def route_message(self, raw_msg: str) -> None:
        self._journal.record(self.id, "rx", raw_msg)
        try:
            frame = check_frame(raw_msg)
        except FrameError as error:
            log.warning("%s: unreadable frame: %s", self.id, error.description)
            if error.unique_id is not None:
                await self._send(json.dumps(error.to_frame()))
            return
        if frame[0] == CALL:
            await self._answer(Call(*frame[1:]))
            return
        waiter = self._answers.pop(frame[1], None)
        if waiter is None:
            log.warning("%s: ignored an answer nobody is waiting for: %.200s", self.id, raw_msg)
        elif not waiter.done():
            waiter.set_result(frame)

    async def _answer(self, message: Call) -> None:
        """Run the handler; a refusal goes out under its OCPP 1.6 name, not the package's."""
        planned = self._central.misbehaviour.get(message.action)
        if planned:
            misbehaviour = planned.pop(0)
            log.warning("%s: %s deliberately not handled", self.id, message.action)
            if misbehaviour.code is not None:
                frame = [CALLERROR, message.unique_id, misbehaviour.code, "refused on request", {}]
                await self._send(json.dumps(frame))
            return
        await self.answer_call(message)

    async def send(self, message: str) -> None:
        """Send text as it is; it is recorded like any frame."""
        await self._send(message)

    async def _send(self, message: str) -> None:
        # Recorded before it goes out, so the record never shows the answer first.
        self._journal.record(self.id, "tx", message)
        try:
            await self.connection.send(message)
        except ConnectionClosed as error:
            raise ConnectionError(f"{self.id} is disconnected") from error

    async def exchange(self, text: str, unique_id: str, timeout: float) -> list[Any]:
        """Send `text` and return the frame that answers `unique_id`."""
        if unique_id in self._answers:
            raise ValueError(f"a request {unique_id!r} is already waiting for its answer")
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._answers[unique_id] = waiter
        try:
            await self._send(text)
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            self._answers.pop(unique_id, None)

    async def request(self, payload: Any, timeout: float) -> dict[str, Any]:
        """Send a typed `ocpp.v16.call` payload, checked against the schema both ways."""
        action = type(payload).__name__
        message = Call(
            str(uuid.uuid4()),
            action,
            remove_nones(snake_to_camel_case(serialize_as_dict(payload))),
        )
        await validate_payload(message, self._ocpp_version)
        try:
            frame = await self.exchange(message.to_json(), message.unique_id, timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.id} did not answer {action} within {timeout} s") from None
        if frame[0] == CALLERROR:
            raise CallErrorReceived(action, frame[2], frame[3], frame[4])
        answer = frame[2]
        try:
            await validate_payload(
                CallResult(message.unique_id, answer, action), self._ocpp_version
            )
        except OCPPError as error:
            raise InvalidAnswer(f"{self.id} answered {action} with {answer!r}: {error}") from None
        result: dict[str, Any] = answer
        return result

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
            self._central.transactions[transaction_id] = TransactionRecord(
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
