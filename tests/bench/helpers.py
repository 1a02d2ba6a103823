"""A bench client that keeps every message, so a test awaits the one it needs instead of polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cp_pi.app import Station

Message = dict[str, Any]


class BenchClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.messages: list[Message] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.connection:
                self.messages.append(json.loads(text))
                self._arrived.set()

    def mark(self) -> int:
        """A point in the message record; later waits look only past it."""
        return len(self.messages)

    async def first(
        self, match: Callable[[Message], bool], *, after: int = 0, timeout: float = 5
    ) -> Message:
        """The first message at index >= ``after`` that matches, received or still to come."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for message in self.messages[after:]:
                        if match(message):
                            return message
                    after = max(after, len(self.messages))
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"no such message within {timeout} s") from None

    async def send_text(self, text: str) -> Message:
        """Send any text; return the bench's answer (the next ack, error or state reply)."""
        start = self.mark()
        await self.connection.send(text)
        return await self.first(lambda m: m["type"] in ("ack", "error"), after=start)

    async def command(self, **command: Any) -> Message:
        return await self.send_text(json.dumps(command))

    async def state_where(self, match: Callable[[Message], bool], *, after: int = 0) -> Message:
        return await self.first(lambda m: m["type"] == "state" and match(m), after=after)

    async def connector_reaches(self, connector_id: int = 1, **fields: Any) -> Message:
        """Wait until the latest state shows the connector with all of ``fields``."""
        latest: Message = {}
        try:
            async with asyncio.timeout(5):
                while True:
                    states = [m for m in self.messages if m["type"] == "state"]
                    latest = connector(states[-1], connector_id) if states else {}
                    if states and all(latest.get(k) == v for k, v in fields.items()):
                        return states[-1]
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"connector never showed {fields}; it shows {latest}") from None

    async def frame(self, match: Callable[[list[Any]], bool], *, after: int = 0) -> Message:
        return await self.first(lambda m: m["type"] == "ocpp" and match(m["frame"]), after=after)


def bench_url(station: Station) -> str:
    assert station.bench is not None, "the station was built without its bench"
    return station.bench.url


def connector(state: Message, connector_id: int = 1) -> Message:
    found: Message = next(c for c in state["connectors"] if c["id"] == connector_id)
    return found


def is_call(action: str, **fields: Any) -> Callable[[list[Any]], bool]:
    return lambda frame: (
        frame[0] == 2
        and frame[2] == action
        and all(frame[3].get(k) == v for k, v in fields.items())
    )


@contextlib.asynccontextmanager
async def bench_client(url: str, **options: Any) -> AsyncIterator[BenchClient]:
    async with connect(url.replace("http", "ws", 1) + "/bench", **options) as connection:
        client = BenchClient(connection)
        try:
            yield client
        finally:
            client._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client._reader
