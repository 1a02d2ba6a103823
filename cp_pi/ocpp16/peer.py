"""One OCPP 1.6J peer for both ends: the charge point's session and the embedded central system's.

Two layers, in the manner of `websockets`:

* :class:`PeerProtocol` is the protocol without I/O: text in, one event out (a CALL to handle, an
  answer to one of our CALLs, a broken frame to refuse, something to drop). It keeps which of our
  CALLs are outstanding and which of the other side's are being handled, and nothing else; tests
  drive it synchronously.
* :class:`Peer` is the thin asyncio adapter: a receive loop over a websocket connection, a future
  per CALL of ours (several may be outstanding), handlers found by their ``@on`` marks
  (:mod:`cp_pi.ocpp16.wire`) and answered under the OCPP 1.6 error codes
  (:mod:`cp_pi.ocpp16.frames`).

Only the `ocpp` package's public schemas and validation are used (``validate_payload``, ``Call``,
``CallResult``, the ``call_result`` payload classes and the case converters).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ocpp.messages
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, validate_payload
from websockets.exceptions import ConnectionClosed

from cp_pi.core.routing import Route, routes
from cp_pi.ocpp16.frames import (
    CALL,
    CALLERROR,
    FrameError,
    check_frame,
    to_ocpp16,
    unhandled_action,
)
from cp_pi.ocpp16.wire import redact_raw

# Schema validation is a few dictionary look-ups; the package's default hands each one to a
# thread pool, which costs more than the validation and adds latency to every frame.
ocpp.messages.ASYNC_VALIDATION = False

OCPP_VERSION = "1.6"


def new_unique_id() -> str:
    """The unique id of a CALL of ours: a UUID4, as the `ocpp` package makes them."""
    return str(uuid.uuid4())


# -- the protocol, without I/O ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broken:
    """A frame that is no OCPP-J frame; ``error.unique_id`` None means it goes unanswered."""

    error: FrameError


@dataclass(frozen=True, slots=True)
class Request:
    """A CALL of the other side, to be handled and answered once."""

    call: Call


@dataclass(frozen=True, slots=True)
class Answer:
    """The CALLRESULT or CALLERROR of one of our CALLs that is still outstanding."""

    action: str
    frame: list[Any]


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame taken no further: why, for the log."""

    frame: list[Any]
    reason: str


Event = Broken | Request | Answer | Dropped


class PeerProtocol:
    """OCPP-J framing for one connection: frames in, events out, no I/O and no clock."""

    def __init__(self) -> None:
        #: Our CALLs whose answer is awaited: unique id -> action.
        self._outstanding: dict[str, str] = {}
        #: The other side's CALLs being handled: a repeat of one is ignored, or two answers
        #: with one unique id would go out.
        self._handling: set[str] = set()

    def receive(self, text: str | bytes) -> tuple[Event, list[Any] | None]:
        """What one received message means, and the frame it parsed to (None when broken)."""
        try:
            frame = check_frame(text)
        except FrameError as error:
            return Broken(error), None
        unique_id = frame[1]
        if frame[0] == CALL:
            if unique_id in self._handling:
                return Dropped(frame, "a repeat of a CALL being handled"), frame
            self._handling.add(unique_id)
            return Request(Call(*frame[1:])), frame
        action = self._outstanding.pop(unique_id, None)
        if action is None:
            return Dropped(frame, "an answer to no CALL outstanding"), frame
        return Answer(action, frame), frame

    def send_call(self, action: str, payload: dict[str, Any], unique_id: str) -> Call:
        """A CALL of ours, outstanding from now on (its answer may come back at once)."""
        if unique_id in self._outstanding:
            raise ValueError(f"a request {unique_id!r} is already waiting for its answer")
        self._outstanding[unique_id] = action
        return Call(unique_id, action, payload)

    def expect(self, unique_id: str, action: str) -> None:
        """Await an answer to a CALL sent as raw text."""
        if unique_id in self._outstanding:
            raise ValueError(f"a request {unique_id!r} is already waiting for its answer")
        self._outstanding[unique_id] = action

    def give_up(self, unique_id: str) -> None:
        """Its answer is no longer awaited (timed out): a late one is dropped."""
        self._outstanding.pop(unique_id, None)

    def answered(self, unique_id: str) -> None:
        """The other side's CALL is answered (or will never be): a repeat is handled again."""
        self._handling.discard(unique_id)

    def connection_lost(self) -> dict[str, str]:
        """Our CALLs that will never be answered now (unique id -> action)."""
        lost, self._outstanding = self._outstanding, {}
        return lost

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    @property
    def handling(self) -> int:
        return len(self._handling)


# -- what a request's answer can be -------------------------------------------------------------


class CallErrorReceived(Exception):
    """The other side answered our CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action} answered with CALLERROR {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class InvalidAnswer(Exception):
    """The other side's CALLRESULT breaks the OCPP 1.6 schema for that action."""

    def __init__(self, message: str, code: str, description: str) -> None:
        super().__init__(message)
        self.code = code
        self.description = description


class HandlerError(Exception):
    """A handler refused or failed: the CALLERROR the package's routing would have sent."""

    def __init__(self, code: str, description: str, details: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details


FrameObserver = Callable[[str, list[Any]], None]


# -- the asyncio adapter ------------------------------------------------------------------------


class Peer:
    """One end of an OCPP 1.6J connection.

    ``max_requests`` bounds the other side's CALLs handled at once, each in its own task; the
    receive loop reads no further while the bound is reached, so TCP slows down a peer that
    sends without waiting. None answers each CALL before the next frame is read.
    """

    def __init__(
        self,
        peer_id: str,
        connection: Any,
        *,
        handlers: tuple[object, ...] = (),
        response_timeout: float = 30,
        max_requests: int | None = None,
        logger: logging.Logger,
    ) -> None:
        self.id = peer_id
        self.connection = connection
        self.response_timeout = response_timeout
        self.logger = logger
        self.protocol = PeerProtocol()
        self._routes: dict[str, Route] = routes(self, *handlers)
        self._max_requests = max_requests
        self._answers: dict[str, asyncio.Future[list[Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._task_done = asyncio.Event()
        self._follow_ups: set[asyncio.Future[Any]] = set()
        #: The most answers to the other side that were in progress at once, for the record.
        self.peak_requests_in_flight = 0
        #: The other side answered one of our CALLs on this connection: the link works.
        self.answered = False

    # -- hooks for each end --------------------------------------------------------------------

    def observe(self, direction: str, text: str | bytes, frame: list[Any] | None) -> None:
        """A frame crossed the websocket (``frame`` None: not a frame)."""

    @contextlib.contextmanager
    def handling(self, message: Call) -> Iterator[None]:
        """Wraps the handling of one CALL, its answer included."""
        yield

    async def take_call(self, message: Call) -> None:
        """Handle one CALL of the other side; an end may answer otherwise (a test's script)."""
        await self.answer_call(message)

    # -- receiving -----------------------------------------------------------------------------

    @property
    def requests_in_flight(self) -> int:
        """Answers to the other side in progress (handlers and CALLERRORs being sent)."""
        return len(self._tasks)

    @property
    def answers_waiting(self) -> int:
        """Answers to our CALLs received and not yet taken by their caller."""
        return sum(1 for waiter in self._answers.values() if waiter.done())

    async def start(self) -> None:
        """Read until the connection closes; then every CALL of ours still waiting fails."""
        try:
            while True:
                if self._max_requests is not None:
                    while len(self._tasks) >= self._max_requests:
                        self._task_done.clear()
                        await self._task_done.wait()
                text = await self.connection.recv()
                try:
                    await self.receive(text)
                except ConnectionError:
                    continue  # an answer found the link closing: read what arrived before it
                except Exception:
                    self.logger.exception("a frame could not be taken in; the session goes on")
        finally:
            for task in list(self._tasks):
                task.cancel()
            self.connection_lost()

    def connection_lost(self) -> None:
        """Every CALL of ours in flight fails at once, naming its action."""
        for unique_id, action in self.protocol.connection_lost().items():
            waiter = self._answers.pop(unique_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(
                    ConnectionError(f"{self.id} disconnected before answering {action}")
                )
                waiter.exception()  # a caller that gave up must not leave it unretrieved

    async def receive(self, text: str | bytes) -> None:
        event, frame = self.protocol.receive(text)
        self.observe("rx", text, frame)
        if isinstance(event, Broken):
            error = event.error
            self.logger.warning(
                "%s: rejected frame %.200r: %s", self.id, redact_raw(text), error.description
            )
            if error.unique_id is not None:
                await self._run(self._refuse(error))
        elif isinstance(event, Request):
            await self._run(self._answer(event.call))
        elif isinstance(event, Answer):
            if event.frame[0] != CALLERROR:
                self.answered = True
            waiter = self._answers.get(event.frame[1])
            if waiter is not None and not waiter.done():
                waiter.set_result(event.frame)  # taken, and removed, by the CALL's own task
        else:
            self.logger.warning(
                "%s: dropped %s (unique id %.36r)", self.id, event.reason, event.frame[1]
            )

    async def _run(self, coroutine: Any) -> None:
        """In its own task under the bound, or now when each CALL is answered in turn."""
        if self._max_requests is None:
            await coroutine
            return
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        self.peak_requests_in_flight = max(self.peak_requests_in_flight, len(self._tasks))
        task.add_done_callback(self._ended)

    async def _refuse(self, error: FrameError) -> None:
        with contextlib.suppress(ConnectionError):
            await self.send(json.dumps(error.to_frame()))

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._task_done.set()

    # -- answering -----------------------------------------------------------------------------

    async def _answer(self, message: Call) -> None:
        try:
            with self.handling(message):
                await self.take_call(message)
        except (ConnectionClosed, ConnectionError):
            return  # no one left to answer; the link redials
        except Exception as error:  # the answer is owed whatever went wrong
            if isinstance(error, RecursionError):
                code, description = "FormationViolation", "payload nested too deeply"
            else:
                self.logger.exception("%s could not be handled", message.action)
                code, description = "InternalError", "the request could not be handled"
            await self.send_callerror(message, code, description)
        finally:
            self.protocol.answered(message.unique_id)

    async def answer_call(self, message: Call) -> None:
        """Validate, run the handler, validate its answer, send it, then the after-answer hook.

        A refusal goes out under its OCPP 1.6 name, not the package's.
        """
        route = self._routes.get(message.action)
        try:
            if route is None or route.on is None:
                raise unhandled_action(message.action)
            await validate_payload(message, OCPP_VERSION)
            arguments = camel_to_snake_case(message.payload)
            try:
                answer = await self._invoke(route.on, arguments)
            except HandlerError as error:
                self.logger.warning(
                    "%s: CALLERROR %s for %s: %s",
                    self.id,
                    error.code,
                    message.action,
                    error.description,
                )
                frame = [CALLERROR, message.unique_id, error.code, error.description, error.details]
                await self.send(json.dumps(frame))
                return
            payload = snake_to_camel_case(remove_nones(serialize_as_dict(answer)))
            result = CallResult(message.unique_id, payload, message.action)
            await validate_payload(result, OCPP_VERSION)
        except OCPPError as error:
            error = to_ocpp16(error)
            await self.send_callerror(message, error.code, error.description)
            return
        await self.send(result.to_json())
        if route.after is not None:
            follow_up = route.after(**arguments)
            if inspect.isawaitable(follow_up):
                task = asyncio.ensure_future(follow_up)
                self._follow_ups.add(task)
                task.add_done_callback(self._follow_ups.discard)

    async def _invoke(self, handler: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        """The handler's answer; what it raises becomes the CALLERROR to send."""
        try:
            answer = handler(**arguments)
            if inspect.isawaitable(answer):
                answer = await answer
            return answer
        except OCPPError as error:
            raise HandlerError(error.code, error.description, error.details) from None
        except (ConnectionClosed, ConnectionError):
            raise
        except Exception:
            self.logger.exception("%s: the handler failed", self.id)
            raise HandlerError("InternalError", "An unexpected error occurred.", {}) from None

    async def send_callerror(self, message: Call, code: str, description: str) -> None:
        self.logger.warning(
            "%s: CALLERROR %s for %s: %s", self.id, code, message.action, description
        )
        await self.send(json.dumps([CALLERROR, message.unique_id, code, description, {}]))

    # -- sending -------------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Send text as it is; it is observed before it leaves (the record never shows the
        answer first)."""
        try:
            frame: list[Any] | None = json.loads(text)
        except ValueError:
            frame = None
        self.observe("tx", text, frame if isinstance(frame, list) else None)
        try:
            await self.connection.send(text)
        except ConnectionClosed as error:
            raise ConnectionError(f"{self.id} is disconnected") from error

    async def exchange(
        self, text: str, unique_id: str, timeout: float, action: str = "a request"
    ) -> list[Any]:
        """Send ``text`` as it is and return the frame that answers ``unique_id``."""
        self.protocol.expect(unique_id, action)
        return await self._await_answer(text, unique_id, action, timeout)

    async def request(
        self, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return its CALLRESULT's payload, both checked against the schema.

        Raises :class:`CallErrorReceived` for a CALLERROR, :class:`InvalidAnswer` for an answer
        outside the schema, ``TimeoutError`` when none came in time, and ``ConnectionError``
        naming the action as soon as the link drops.
        """
        timeout = self.response_timeout if timeout is None else timeout
        message = Call(new_unique_id(), action, payload)
        await validate_payload(message, OCPP_VERSION)
        self.protocol.send_call(action, payload, message.unique_id)
        frame = await self._await_answer(message.to_json(), message.unique_id, action, timeout)
        if frame[0] == CALLERROR:
            raise CallErrorReceived(action, frame[2], frame[3], frame[4])
        answer: dict[str, Any] = frame[2]
        try:
            await validate_payload(CallResult(message.unique_id, answer, action), OCPP_VERSION)
        except OCPPError as error:
            raise InvalidAnswer(
                f"{self.id} answered {action} with {answer!r}: {error}",
                error.code,
                error.description,
            ) from None
        return answer

    async def _await_answer(
        self, text: str, unique_id: str, action: str, timeout: float
    ) -> list[Any]:
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._answers[unique_id] = waiter
        try:
            try:
                await self.send(text)
            except ConnectionError as error:
                raise ConnectionError(f"{action} not sent: {self.id} is disconnected") from error
            try:
                async with asyncio.timeout(timeout):
                    return await waiter
            except TimeoutError:
                raise TimeoutError(
                    f"{self.id} did not answer {action} within {timeout} s"
                ) from None
        finally:
            self._answers.pop(unique_id, None)
            self.protocol.give_up(unique_id)
