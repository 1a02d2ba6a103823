"""One OCPP 1.6J session with the central system, on the `ocpp` package's framing and routing.

Two departures from the package's receive loop, both for the charge point's sake:

* each incoming CALL is handled in its own task, so a lock drive of a few seconds does not stop
  the next frame (a CALLRESULT for our own StopTransaction, a Heartbeat answer) from being read;
* CALLERRORs carry the OCPP 1.6 codes (see :mod:`cp_pi.ocpp16.errors`) and a malformed frame is
  answered, never fatal.

Handlers only translate between OCPP payloads and the charge point
(:class:`~cp_pi.station.charge_point.ChargePoint`); follow-up CALLs are queued on the outbox, which
is held until the CALLRESULT is out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ocpp.messages
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import OccurenceConstraintViolationError, OCPPError
from ocpp.messages import Call, CallError, CallResult
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from cp_pi.ocpp16.errors import (
    CALL,
    CALLERROR,
    FrameError,
    check_frame,
)
from cp_pi.ocpp16.peer import Ocpp16Peer
from cp_pi.ocpp16.wire import after, on, redact, redact_raw
from cp_pi.station.configuration import AUTHORIZATION_KEY
from cp_pi.station.outbox import CallError as CallErrorAnswer

if TYPE_CHECKING:
    from cp_pi.station.charge_point import ChargePoint

log = logging.getLogger("cp_pi.ocpp")

FrameObserver = Callable[[str, list[Any]], None]


class OcppSession(Ocpp16Peer):
    def __init__(
        self,
        charge_point: ChargePoint,
        connection: Any,
        *,
        response_timeout: float = 30,
        on_frame: FrameObserver | None = None,
    ) -> None:
        super().__init__(charge_point.id, connection, response_timeout=response_timeout, logger=log)
        self._cp = charge_point
        self._on_frame = on_frame
        self._handlers: set[asyncio.Task[None]] = set()
        #: Unique ids of the CALLs being handled: a repeat while one is in flight is ignored,
        #: or two answers with one id would reach the central system.
        self._in_flight: set[str] = set()

    # -- framing -------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            while True:
                text = await self._connection.recv()
                self._dispatch(text)
        finally:
            for task in list(self._handlers):
                task.cancel()

    def _dispatch(self, text: str | bytes) -> None:
        try:
            frame = check_frame(text)
        except FrameError as error:
            self._observe("rx", text)
            log.warning("rejected frame %.200r: %s", redact_raw(text), error.description)
            if error.unique_id is not None:
                self._spawn(self._send(json.dumps(error.to_frame())))
            return
        self._observe("rx", frame)
        if frame[0] == CALL:
            if frame[1] in self._in_flight:
                log.warning("ignored a repeat of CALL %s while it is being handled", frame[1])
                return
            self._in_flight.add(frame[1])
            self._spawn(self._answer(Call(*frame[1:])))
        elif frame[0] == CALLERROR:
            self._response_queue.put_nowait(CallError(*frame[1:]))
        else:
            self._response_queue.put_nowait(CallResult(*frame[1:]))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _answer(self, message: Call) -> None:
        try:
            await self._answer_held(message)
        finally:
            self._in_flight.discard(message.unique_id)

    async def _answer_held(self, message: Call) -> None:
        with self._cp.outbox.hold():
            await self.answer_call(message)

    async def _send(self, message: str) -> None:
        self._observe("tx", json.loads(message))
        await self._connection.send(message)

    def _observe(self, direction: str, frame: list[Any] | str | bytes) -> None:
        if self._on_frame is not None:
            shown = redact(frame) if isinstance(frame, list) else [repr(redact_raw(frame))]
            self._on_frame(direction, shown)

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:
        """The answer to our CALL `unique_id`; answers to earlier, timed-out CALLs are dropped.

        Replaces the package's version, whose ``asyncio.wait_for`` can swallow a cancellation
        that arrives together with the answer on Python 3.11 (fixed in 3.12): the link would
        then never stop. ``asyncio.timeout`` does not have that flaw.
        """
        async with asyncio.timeout(timeout):
            while True:
                response = await self._response_queue.get()
                if response.unique_id == unique_id:
                    return response
                log.warning("dropped an answer to an earlier CALL %s", response.unique_id)

    # -- the outbox's sender -------------------------------------------------------------------

    async def send_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = getattr(call, action)(**camel_to_snake_case(payload))
        try:
            result = await self.call(request, suppress=False)
        except OCPPError as error:
            raise CallErrorAnswer(error.code, error.description) from None
        except ocpp.exceptions.UnknownCallErrorCodeError as error:
            raise CallErrorAnswer("Unknown", str(error)) from None
        answer: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(result)))
        return answer

    # -- Core profile, as a charge point -------------------------------------------------------

    @on(Action.unlock_connector)
    async def _on_unlock_connector(
        self, connector_id: int, **_: Any
    ) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status=await self._cp.unlock_connector(connector_id))

    @on(Action.remote_start_transaction)
    def _on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        return call_result.RemoteStartTransaction(
            status=self._cp.remote_start(id_tag, connector_id)
        )

    @on(Action.remote_stop_transaction)
    def _on_remote_stop(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        return call_result.RemoteStopTransaction(status=self._cp.remote_stop(transaction_id))

    @on(Action.reset)
    def _on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status=self._cp.reset(type))

    @on(Action.change_availability)
    def _on_change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(
            status=self._cp.change_availability(connector_id, type)
        )

    @on(Action.change_configuration)
    def _on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        return call_result.ChangeConfiguration(status=self._cp.configuration.change(key, value))

    @after(Action.change_configuration)
    async def _after_change_configuration(self, key: str, value: str, **_: Any) -> None:
        """TC_073: a new AuthorizationKey is used at once. Its CALLRESULT is out by now, so the
        link closes, and the link dials again with the new key, and only with it."""
        if key == AUTHORIZATION_KEY and value == self._cp.configuration.authorization_key():
            log.warning("the central system changed the AuthorizationKey: reconnecting with it")
            await self._connection.close(1000, "new credentials")

    @on(Action.get_configuration)
    def _on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        # OCPP 1.6 (5.8) lets the charge point limit the keys of one request to
        # GetConfigurationMaxKeys; a list beyond it breaks an occurrence constraint, and
        # answering only some of the keys asked for would hide the others without a word.
        limit = self._cp.configuration.get_int("GetConfigurationMaxKeys")
        if key is not None and len(key) > limit:
            raise OccurenceConstraintViolationError(
                description=f"{len(key)} keys asked; GetConfigurationMaxKeys is {limit}"
            )
        known, unknown = self._cp.configuration.get(key)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k.key, "readonly": k.readonly, "value": k.value} for k in known
            ]
            or None,
            unknown_key=unknown or None,
        )

    @on(Action.clear_cache)
    def _on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self._cp.authorization_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def _on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.trigger_message)
    def _on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(
            status=self._cp.trigger_message(requested_message, connector_id)
        )
