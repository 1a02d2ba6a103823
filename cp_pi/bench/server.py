"""The bench control protocol: watch and drive a mock charge point over a websocket.

``ws://HOST:PORT/bench`` sends the state on connect and after every change, and every OCPP frame
as ``{"type": "ocpp", "dir": "tx"|"rx", "frame": [...]}``; it takes commands as JSON objects
(``plug``, ``unplug``, ``swipe``, ``fault``, ``state``, plus the ``extra_commands`` the composition
root adds, such as ``csms``). ``GET /api/state`` answers the same state and ``GET /`` the bench
page. ``docs/bench-protocol.md`` is the reference. The plain HTTP answers ride on the websockets
server's ``process_request`` hook, so the bench needs no second web framework.

Every request must name the bench by a loopback name, by the address it listens on or by a name in
``bench.allowed_hosts``, and a browser's ``Origin`` must be the bench itself: a web page whose own
name an attacker rebinds to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from cp_pi.hardware.rig import BenchRig, RigFault
from cp_pi.listening import CannotListen
from cp_pi.station.charger import Charger
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.bench")

#: OCPP frames kept for a page that connects late.
FRAME_HISTORY = 200

Command = dict[str, Any]
ExtraCommand = Callable[[Command], Awaitable[dict[str, Any]]]

_CONTENT_TYPES = {
    "html": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "svg": "image/svg+xml",
    "json": "application/json",
    "plain": "text/plain",
}

#: The page loads only its own files and talks only to its own server.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class BenchError(Exception):
    """A command the bench cannot carry out; the client gets its message and ``details``."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def _page_files() -> dict[str, tuple[Traversable, str]]:
    """URL path -> (file, content type) for the files of ``static/``.

    Only the names are kept: a file is read when it is asked for, so that a charge point whose
    page nobody opens does not hold the page's text in memory for as long as it runs.
    """
    files: dict[str, tuple[Traversable, str]] = {}
    for entry in (resources.files("cp_pi.bench") / "static").iterdir():
        extension = entry.name.rpartition(".")[2]
        if entry.is_file() and extension in _CONTENT_TYPES:
            files[f"/{entry.name}"] = (entry, extension)
    files["/"] = files["/index.html"]
    return files


class BenchServer:
    def __init__(
        self,
        charger: Charger,
        rig: BenchRig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_hosts: Iterable[str] = (),
        extra_commands: dict[str, ExtraCommand] | None = None,
    ) -> None:
        self.cp = charger
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
        self._page = _page_files()
        self._allowed_hosts = frozenset((host.strip("[]").lower(), *allowed_hosts))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if reachable_from_network(self.host):
            log.warning(
                "the bench listens on %s: anyone who can reach it can drive this charge point"
                " and its central system; use 127.0.0.1 unless the network is yours (and name"
                " the bench in bench.allowed_hosts to reach it by another name)",
                self.host,
            )
        try:
            self._server = await serve(
                self._handle, self.host, self.port, process_request=self._http, max_size=64 * 1024
            )
        except OSError as error:
            raise CannotListen(self.host, self.port, error) from error
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
        state["csms_commands"] = "csms" in self._extra
        for connector in state["connectors"]:
            connector["fault"] = self.rig.fault(connector["id"]).value
            connector["latch_engaged"] = self.rig.lock_engaged(connector["id"])
            rcd = self.rig.rcd_tripped(connector["id"])
            connector["rcd"] = None if rcd is None else ("tripped" if rcd else "ok")
            connector["vehicle"] = self.rig.vehicle_state(connector["id"])
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
        refusal = self._refusal(connection, request)
        if refusal is not None:
            return refusal
        path = urlsplit(request.path).path
        if path == "/bench":
            return None  # go on with the websocket handshake
        if path == "/api/state":
            return _respond(connection, http.HTTPStatus.OK, json.dumps(self.state()), "json")
        if path in self._page:
            file, kind = self._page[path]
            return _respond(connection, http.HTTPStatus.OK, file.read_text(encoding="utf-8"), kind)
        return _respond(connection, http.HTTPStatus.NOT_FOUND, "not found\n", "plain")

    def _refusal(self, connection: ServerConnection, request: Request) -> Response | None:
        """421 for a Host the bench is not known by, 403 for a page of another origin."""
        host = request.headers.get("Host")
        origin = request.headers.get("Origin")
        if not self._allowed(host):
            log.warning(
                "bench: refused %s for Host %r: not a name of this bench (bench.allowed_hosts)",
                request.path,
                host,
            )
            return _respond(
                connection, http.HTTPStatus.MISDIRECTED_REQUEST, "wrong host\n", "plain"
            )
        # A browser names the page's origin; scripts and tools send none and are let in.
        if origin is not None and urlsplit(origin).netloc.lower() != str(host).lower():
            log.warning("bench: refused %s from a page of origin %r", request.path, origin)
            return _respond(connection, http.HTTPStatus.FORBIDDEN, "foreign origin\n", "plain")
        return None

    def _allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            name = urlsplit(f"//{host}").hostname
        except ValueError:  # a malformed address, such as "[::1"
            return False
        return name is not None and (is_loopback(name) or name in self._allowed_hosts)

    # -- the websocket -------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        running: set[asyncio.Task[None]] = set()
        try:
            await connection.send(json.dumps(self.state()))
            for frame in list(self._frames):
                await connection.send(json.dumps(frame))
            async for text in connection:
                # A csms command waits for the charge point's answer (an unlock: up to 10 s);
                # plugging or unplugging meanwhile must not queue behind it.
                task = asyncio.create_task(self._answer(connection, text))
                running.add(task)
                task.add_done_callback(running.discard)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(connection)
            await cancel_and_wait(running)

    async def _answer(self, connection: ServerConnection, text: str | bytes) -> None:
        await self._send_quietly(connection, json.dumps(await self._command(text)))

    async def _command(self, text: str | bytes) -> dict[str, Any]:
        try:
            command = json.loads(text)
        except ValueError:
            return {"type": "error", "op": None, "message": "not valid JSON"}
        if not isinstance(command, dict):
            return {"type": "error", "op": None, "message": "a command is a JSON object"}
        op = command.get("op")
        # Commands may finish out of order (see _handle): a client tells its answers apart by
        # the "ref" it sent, echoed as it was.
        ref = {"ref": command["ref"]} if "ref" in command else {}
        if op == "state":
            return {**self.state(), **ref}
        try:
            reply = await self._run(op, command)
        except BenchError as error:
            return {"type": "error", "op": op, **error.details, "message": str(error), **ref}
        return {"type": "ack", "op": op, **reply, **ref}

    async def _run(self, op: object, command: Command) -> dict[str, Any]:
        if op == "ev":
            self._vehicle(self._connector(command), command.get("state"))
            return {}
        if op in ("plug", "unplug", "swipe", "fault"):
            connector_id = self._connector(command)
            if op == "plug":
                self.rig.plug(connector_id, _cable_rating(command.get("cable_rating", 32)))
            elif op == "unplug":
                self.rig.unplug(connector_id)
            elif op == "swipe":
                self.cp.swipe(connector_id, id_tag_of(command.get("id_tag")))
            else:
                fault = _fault(command.get("fault"))
                if fault is RigFault.DIODE_MISSING and self.rig.vehicle_state(connector_id) is None:
                    raise BenchError(f"connector {connector_id} has no control pilot")
                if fault is RigFault.RCD_TRIP and self.rig.rcd_tripped(connector_id) is None:
                    raise BenchError(
                        f"connector {connector_id} has no residual-current monitor"
                        ' (its rcd is "none")'
                    )
                self.rig.set_fault(connector_id, fault)
                # Not every fault moves a pin (a cut feedback wire on an open lock reads the
                # same), so the charge point may see no change; the bench state did change.
                self._state_changed()
            return {}
        if isinstance(op, str) and op in self._extra:
            return await self._extra[op](command)
        if op == "csms":
            raise BenchError(
                "csms commands need the embedded central system; this charge point talks to"
                " the CSMS at csms_url (leave csms_url unset to use the embedded one)"
            )
        raise BenchError(f"unknown op {op!r}")

    def _vehicle(self, connector_id: int, state: object) -> None:
        """The vehicle's side of the pilot, set by hand (``ev``)."""
        if self.rig.vehicle_state(connector_id) is None:
            raise BenchError(
                f"connector {connector_id} has no control pilot (its pilot is configured none)"
            )
        if state not in ("A", "B", "C", "D", "E"):
            raise BenchError(f"unknown vehicle state {state!r} (one of A, B, C, D, E)")
        self.rig.ev(connector_id, str(state))
        self._state_changed()

    def _connector(self, command: Command) -> int:
        connector_id = command.get("connector")
        if (
            not isinstance(connector_id, int)
            or isinstance(connector_id, bool)
            or connector_id not in self.cp.connectors
        ):
            raise BenchError(f"no connector {connector_id!r}")
        return connector_id


def reachable_from_network(host: str) -> bool:
    """True unless the host is a loopback address: a name may resolve to anything."""
    return not is_loopback(host)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address, which no other machine can reach or rebind."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def id_tag_of(value: object) -> str:
    """An idTag from a command: OCPP 1.6's CiString20Type, 1 to 20 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 20:
        raise BenchError(
            f"id_tag must be an OCPP idTag: an idTag is a string of 1 to 20 characters,"
            f" not {value!r}"
        )
    return value


def _cable_rating(value: object) -> int | str:
    """A plug's coding: 13, 20, 32 or 63 A, or "bad" (a resistor in no band)."""
    if value == "bad" or (type(value) is int and value in (13, 20, 32, 63)):
        return value
    raise BenchError(f'unknown cable_rating {value!r} (one of 13, 20, 32, 63, "bad")')


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
    headers["Content-Type"] = f"{_CONTENT_TYPES[kind]}; charset=utf-8"
    headers["Cache-Control"] = "no-store"
    headers["X-Content-Type-Options"] = "nosniff"
    if kind == "html":
        headers["Content-Security-Policy"] = _PAGE_POLICY
    response.headers = headers
    return response
