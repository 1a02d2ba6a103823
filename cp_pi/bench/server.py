"""The bench control protocol: watch and drive a mock charge point over a websocket.

``ws://HOST:PORT/bench`` sends the state on connect and after every change, and every OCPP frame
as ``{"type": "ocpp", "dir": "tx"|"rx", "frame": [...]}``; it takes commands as JSON objects
(``plug``, ``unplug``, ``swipe``, ``fault``, ``state``). ``GET /api/state`` answers the same state.
The plain HTTP answers ride on the websockets server's ``process_request`` hook, so the bench
needs no second web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from cp_pi.hardware.rig import BenchRig, RigFault
from cp_pi.station.charge_point import ChargePoint

log = logging.getLogger("cp_pi.bench")

#: OCPP frames kept for a page that connects late.
FRAME_HISTORY = 200

Command = dict[str, Any]
ExtraCommand = Callable[[Command], Awaitable[dict[str, Any]]]


class BenchError(Exception):
    """A command the bench cannot carry out; the client gets its message."""


class BenchServer:
    def __init__(
        self,
        charge_point: ChargePoint,
        rig: BenchRig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_commands: dict[str, ExtraCommand] | None = None,
    ) -> None:
        self.cp = charge_point
        self.rig = rig
        self.host = host
        self.port = port
        self.link_state = "starting"
        self._extra = dict(extra_commands or {})
        self._clients: set[ServerConnection] = set()
        self._frames: deque[dict[str, Any]] = deque(maxlen=FRAME_HISTORY)
        self._server: Server | None = None
        self._state_pending = False
        self._sending: set[asyncio.Future[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._http, max_size=64 * 1024
        )
        self.port = self._server.sockets[0].getsockname()[1] if self.port == 0 else self.port
        self.cp.subscribe(self._state_changed)
        log.info("bench at %s (websocket %s/bench)", self.url, self.url.replace("http", "ws"))

    async def stop(self) -> None:
        self.cp.unsubscribe(self._state_changed)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- what the bench shows ------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        state = self.cp.state()
        state["link"] = self.link_state
        for connector in state["connectors"]:
            connector["fault"] = self.rig.fault(connector["id"]).value
        return state

    def on_frame(self, direction: str, frame: list[Any]) -> None:
        message = {"type": "ocpp", "dir": direction, "time": time.time(), "frame": frame}
        self._frames.append(message)
        self._broadcast(message)

    def on_link_state(self, text: str) -> None:
        self.link_state = text
        self._state_changed()

    def _state_changed(self) -> None:
        # Coalesce a burst of changes (one pin edge fires several) into one state message.
        if self._state_pending or not self._clients:
            return
        self._state_pending = True

        def send() -> None:
            self._state_pending = False
            self._broadcast(self.state())

        asyncio.get_running_loop().call_soon(send)

    def _broadcast(self, message: dict[str, Any]) -> None:
        if not self._clients:
            return
        text = json.dumps(message)
        for client in list(self._clients):
            task = asyncio.ensure_future(self._send_quietly(client, text))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _send_quietly(client: ServerConnection, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.send(text)

    # -- HTTP ----------------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/bench":
            return None  # go on with the websocket handshake
        if request.path == "/api/state":
            return _respond(connection, http.HTTPStatus.OK, json.dumps(self.state()), "json")
        return _respond(connection, http.HTTPStatus.NOT_FOUND, "not found\n", "plain")

    # -- the websocket -------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        try:
            await connection.send(json.dumps(self.state()))
            for frame in list(self._frames):
                await connection.send(json.dumps(frame))
            async for text in connection:
                await connection.send(json.dumps(await self._command(text)))
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(connection)

    async def _command(self, text: str | bytes) -> dict[str, Any]:
        op = None
        try:
            command = json.loads(text)
            if not isinstance(command, dict):
                raise BenchError("a command is a JSON object")
            op = command.get("op")
            if op == "state":
                return self.state()
            reply = await self._run(op, command)
            return {"type": "ack", "op": op, **reply}
        except ValueError:
            return {"type": "error", "op": op, "message": "not valid JSON"}
        except BenchError as error:
            return {"type": "error", "op": op, "message": str(error)}

    async def _run(self, op: object, command: Command) -> dict[str, Any]:
        if op in ("plug", "unplug", "swipe", "fault"):
            connector_id = self._connector(command)
            if op == "plug":
                self.rig.plug(connector_id)
            elif op == "unplug":
                self.rig.unplug(connector_id)
            elif op == "swipe":
                id_tag = command.get("id_tag")
                if not isinstance(id_tag, str) or not 0 < len(id_tag) <= 20:
                    raise BenchError("id_tag must be a string of 1 to 20 characters")
                self.cp.swipe(connector_id, id_tag)
            else:
                self.rig.set_fault(connector_id, _fault(command.get("fault")))
            return {}
        if isinstance(op, str) and op in self._extra:
            return await self._extra[op](command)
        raise BenchError(f"unknown op {op!r}")

    def _connector(self, command: Command) -> int:
        connector_id = command.get("connector")
        if (
            not isinstance(connector_id, int)
            or isinstance(connector_id, bool)
            or connector_id not in self.cp.connectors
        ):
            raise BenchError(f"no connector {connector_id!r}")
        return connector_id


def _fault(value: object) -> RigFault:
    try:
        return RigFault(str(value))
    except ValueError:
        names = ", ".join(f.value for f in RigFault)
        raise BenchError(f"unknown fault {value!r} (one of {names})") from None


def _respond(
    connection: ServerConnection, status: http.HTTPStatus, body: str, kind: str
) -> Response:
    response = connection.respond(status, body)
    headers = Headers(response.headers)
    del headers["Content-Type"]
    headers["Content-Type"] = f"{'application' if kind == 'json' else 'text'}/{kind}; charset=utf-8"
    headers["Cache-Control"] = "no-store"
    response.headers = headers
    return response
