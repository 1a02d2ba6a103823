"""One OCPP 1.6J session with the central system, on the `ocpp` package's framing and routing.

Departures from the package's receive loop, all for the charge point's sake:

* each incoming CALL is handled in its own task, so a lock drive of a few seconds does not stop
  the next frame (a CALLRESULT for our own StopTransaction, a Heartbeat answer) from being read;
* but only ``max_requests`` at once: OCPP 1.6 lets the central system have one CALL outstanding,
  and one that sends without waiting is not read further until a handler is free, so TCP
  backpressure slows it down instead of the charge point queueing work without limit;
* an answer is taken only for the CALL we are waiting for; any other (an id never sent, one whose
  wait timed out) is logged and dropped at once;
* CALLERRORs carry the OCPP 1.6 codes (see :mod:`cp_pi.ocpp16.errors`) and a malformed frame is
  answered, never fatal, whatever the parser or a handler raises.

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
from websockets.exceptions import ConnectionClosed

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

#: CSMS requests handled at once unless configured otherwise (``max_requests_in_flight``).
MAX_REQUESTS = 4


class OcppSession(Ocpp16Peer):
    def __init__(
        self,
        charge_point: ChargePoint,
        connection: Any,
        *,
        response_timeout: float = 30,
        on_frame: FrameObserver | None = None,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        super().__init__(charge_point.id, connection, response_timeout=response_timeout, logger=log)
        self._cp = charge_point
        self._on_frame = on_frame
        self._max_requests = max_requests
        self._handlers: set[asyncio.Task[None]] = set()
        self._handler_done = asyncio.Event()
        #: The most answers to the central system that were in progress at once, for the record.
        self.peak_requests_in_flight = 0
        #: Unique ids of the CALLs being handled: a repeat while one is in flight is ignored,
        #: or two answers with one id would reach the central system.
        self._in_flight: set[str] = set()
        #: The unique id of our CALL whose answer we wait for; no other answer is taken.
        self._awaited: str | None = None
        #: The central system answered one of our CALLs on this connection: the link works.
        self.answered = False

    # -- framing -------------------------------------------------------------------------------

    @property
    def requests_in_flight(self) -> int:
        """Answers to the central system in progress (handlers and CALLERRORs being sent)."""
        return len(self._handlers)

    @property
    def answers_waiting(self) -> int:
        """Answers to our CALLs received and not yet taken: at most the one awaited."""
        waiting: int = self._response_queue.qsize()
        return waiting

    async def start(self) -> None:
        try:
            while True:
                while len(self._handlers) >= self._max_requests:
                    self._handler_done.clear()
                    await self._handler_done.wait()
                text = await self._connection.recv()
                try:
                    self._dispatch(text)
                except Exception:
                    log.exception("a frame could not be taken in; the session goes on")
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
        elif frame[1] != self._awaited:
            log.warning("dropped an answer to no CALL outstanding (unique id %.36r)", frame[1])
        elif frame[0] == CALLERROR:
            self._awaited = None
            self._response_queue.put_nowait(CallError(*frame[1:]))
        else:
            self._awaited = None
            self.answered = True
            self._response_queue.put_nowait(CallResult(*frame[1:]))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._handlers.add(task)
        self.peak_requests_in_flight = max(self.peak_requests_in_flight, len(self._handlers))
        task.add_done_callback(self._handler_ended)

    def _handler_ended(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        self._handler_done.set()

    async def _answer(self, message: Call) -> None:
        try:
            await self._answer_held(message)
        except ConnectionClosed:
            return  # no one left to answer; the link redials
        except Exception as error:  # the answer is owed whatever went wrong
            if isinstance(error, RecursionError):
                code, description = "FormationViolation", "payload nested too deeply"
            else:
                log.exception("%s could not be handled", message.action)
                code, description = "InternalError", "the request could not be handled"
            log.warning("CALLERROR %s for %s: %s", code, message.action, description)
            await self._send(json.dumps([CALLERROR, message.unique_id, code, description, {}]))
        finally:
            self._in_flight.discard(message.unique_id)

    async def _answer_held(self, message: Call) -> None:
        with self._cp.outbox.hold():
            await self.answer_call(message)

    async def _send(self, message: str) -> None:
        frame = json.loads(message)
        self._observe("tx", frame)
        if frame[0] == CALL:
            self._awaited = frame[1]  # before it leaves: the answer may come back at once
        await self._connection.send(message)

    def _observe(self, direction: str, frame: list[Any] | str | bytes) -> None:
        if self._on_frame is not None:
            shown = redact(frame) if isinstance(frame, list) else [repr(redact_raw(frame))]
            self._on_frame(direction, shown)

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:
        """The answer to our CALL `unique_id`; after the timeout, its answer is not taken.

        Replaces the package's version, whose ``asyncio.wait_for`` can swallow a cancellation
        that arrives together with the answer on Python 3.11 (fixed in 3.12): the link would
        then never stop. ``asyncio.timeout`` does not have that flaw. Only the awaited answer
        is ever queued (see :meth:`_dispatch`), so the queue holds one frame at most.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    response = await self._response_queue.get()
                    if response.unique_id == unique_id:
                        return response
                    log.warning("dropped an answer to an earlier CALL %s", response.unique_id)
        finally:
            if self._awaited == unique_id:
                self._awaited = None

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
