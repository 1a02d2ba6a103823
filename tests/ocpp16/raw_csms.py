"""A central system written by hand on the websockets library, to play a hostile or broken one.

The embedded CSMS is a polite peer; this one does what a test tells it: answers the charge
point's CALLs with any payload, ignores or refuses some, sends CALLs without waiting, closes the
link right after accepting it. It is a real websocket peer on 127.0.0.1, not a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from cp_pi.ocpp16.wire import utc_now

Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


def default_answers() -> dict[str, Answer]:
    """What a plain central system answers; a test replaces any of them."""
    ids = iter(range(1, 1_000_000))
    return {
        "BootNotification": lambda _: {
            "status": "Accepted",
            "currentTime": utc_now(),
            "interval": 300,
        },
        "Heartbeat": lambda _: {"currentTime": utc_now()},
        "StatusNotification": lambda _: {},
        "MeterValues": lambda _: {},
        "Authorize": lambda _: {"idTagInfo": {"status": "Accepted"}},
        "StartTransaction": lambda _: {
            "transactionId": next(ids),
            "idTagInfo": {"status": "Accepted"},
        },
        "StopTransaction": lambda _: {},
    }


class RawCsms:
    """One charge point at a time; ``answers[action]`` returning None leaves a CALL unanswered,
    ``refuse`` names actions answered with a CALLERROR."""

    def __init__(self, *, close_at_once: bool = False) -> None:
        self.answers = default_answers()
        self.refuse: set[str] = set()
        self.close_at_once = close_at_once
        #: Every CALL the charge point sent, in order: (action, payload).
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: The unique id of the charge point's latest CALL of each action.
        self.last_id: dict[str, str] = {}
        #: The charge point's answers to our CALLs, by unique id.
        self.replies: dict[str, list[Any]] = {}
        self.connections = 0
        self.connection: ServerConnection | None = None
        self._changed = asyncio.Event()
        self._counts: dict[str, int] = defaultdict(int)
        self._server: Server | None = None
        self._answering: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawCsms:
        self._server = await serve(self._handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    def count(self, action: str) -> int:
        return self._counts[action]

    async def until(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        """Wait, woken by every frame and connection, until ``condition`` holds."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def send(self, frame: list[Any] | str) -> None:
        """Send a frame as it is; it waits only while the socket's buffers are full."""
        assert self.connection is not None
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))
        # websockets sends one message at a time; a sender that never yields would keep the
        # answers to the charge point's own CALLs from ever being sent.
        await asyncio.sleep(0)

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        self._changed.set()
        if self.close_at_once:
            await connection.close()
            return
        self.connection = connection
        with contextlib.suppress(ConnectionClosed):  # the charge point may go at any time
            async for text in connection:
                frame = json.loads(text)
                if frame[0] == 2:
                    # Answered aside: while a flood fills the link, an answer waits to be sent,
                    # and reading must go on meanwhile or both ends would wait for each other.
                    answering = asyncio.create_task(self._answer(connection, frame))
                    self._answering.add(answering)
                    answering.add_done_callback(self._answering.discard)
                else:
                    self.replies[frame[1]] = frame
                self._changed.set()

    async def _answer(self, connection: ServerConnection, frame: list[Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._reply(connection, frame)

    async def _reply(self, connection: ServerConnection, frame: list[Any]) -> None:
        _, unique_id, action, payload = frame
        self.calls.append((action, payload))
        self.last_id[action] = unique_id
        self._counts[action] += 1
        if action in self.refuse:
            await connection.send(json.dumps([4, unique_id, "InternalError", "refused", {}]))
            return
        answer = self.answers[action](payload)
        if answer is not None:
            await connection.send(json.dumps([3, unique_id, answer]))
