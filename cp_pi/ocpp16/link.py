"""The websocket link to the central system: connect, boot, heartbeat, deliver, and redial forever.

BootNotification is sent once per start (or reset), not on every reconnect; until it is accepted
nothing else is sent (Pending and Rejected are retried after the interval the CSMS gave). After a
reset the link either boots again in this process (a fleet, the bench) or ends, so that
``cp-pi run`` can start the process afresh.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import (
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.headers import build_authorization_basic

from cp_pi.config import SecurityConfig
from cp_pi.ocpp16.flow import BoundedConnection
from cp_pi.ocpp16.session import MAX_REQUESTS, FrameObserver, OcppSession
from cp_pi.station.charge_point import ChargePoint
from cp_pi.station.outbox import CallError
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.link")

SUBPROTOCOL = "ocpp1.6"
#: Bounds of the redial backoff, in seconds (exponential, with jitter).
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
#: Bounded buffers, so that a hostile central system cannot make the charge point grow: a frame
#: over MAX_SIZE closes the link; at most MAX_QUEUE frames wait unread before the socket is no
#: longer read (TCP then slows the sender); writes wait once WRITE_LIMIT bytes are unsent.
MAX_SIZE, MAX_QUEUE, WRITE_LIMIT = 2**20, 4, 2**15


def backoff_delay(attempt: int, *, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> float:
    """Full-jitter exponential backoff: spreads a fleet's redials after a CSMS restart."""
    return random.uniform(first / 2, min(cap, first * 2**attempt))


class Link:
    def __init__(
        self,
        charge_point: ChargePoint,
        csms_url: str,
        *,
        on_frame: FrameObserver | None = None,
        on_state: Callable[[str], None] | None = None,
        response_timeout: float = 30,
        backoff_first: float = BACKOFF_FIRST,
        security: SecurityConfig | None = None,
        boot_again_after_reset: bool = True,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        self.cp = charge_point
        self._max_requests = max_requests
        #: The session of the current connection, None between connections.
        self.session: OcppSession | None = None
        #: Dials in a row that failed or whose link ended before the central system answered on
        #: it; the redial backoff grows with it.
        self.failures_in_a_row = 0
        self._boot_again_after_reset = boot_again_after_reset
        self.url = f"{csms_url.rstrip('/')}/{charge_point.id}"
        self._security = security or SecurityConfig()
        self._on_frame = on_frame
        self._on_state = on_state
        self._response_timeout = response_timeout
        self._backoff_first = backoff_first

    def _state(self, text: str) -> None:
        log.info("link: %s", text)
        if self._on_state is not None:
            self._on_state(text)

    async def run(self) -> None:
        """Stay connected until cancelled, or until a reset when the process restarts for it."""
        while True:
            self._state(f"connecting to {self.url}")
            try:
                async with connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    open_timeout=10,
                    # A pong missing for one more interval means a half-open link: redial.
                    ping_interval=self._ping_interval(),
                    ping_timeout=self._ping_interval(),
                    # and a peer that does not answer the closing handshake is not waited for.
                    close_timeout=2,
                    max_size=MAX_SIZE,
                    max_queue=MAX_QUEUE,
                    write_limit=WRITE_LIMIT,
                    create_connection=BoundedConnection,
                    **self._credentials(),
                ) as websocket:
                    if websocket.subprotocol != SUBPROTOCOL:
                        log.error("the CSMS did not accept subprotocol %s", SUBPROTOCOL)
                        await websocket.close(1002, "ocpp1.6 required")
                    else:
                        await self._serve(websocket)
            except (OSError, InvalidHandshake, WebSocketException, TimeoutError) as error:
                if isinstance(error, InvalidURI):
                    raise
                log.warning("link: %s", explain(error))
            finally:
                self.cp.on_link(False)
            if self.cp.reboot_requested.is_set():
                if not self._boot_again_after_reset:
                    return
                self.cp.restart()
                continue
            delay = backoff_delay(self.failures_in_a_row, first=self._backoff_first)
            self.failures_in_a_row += 1
            self._state(f"disconnected; redialling in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _credentials(self) -> dict[str, Any]:
        """Basic auth (profiles 1 and 2) and TLS (profile 2; 3 with a client certificate).

        A ``wss://`` URL is only ever dialled with TLS, and a failed handshake is retried as
        it is: there is no fallback to plain text.
        """
        options: dict[str, Any] = {}
        key = self.cp.configuration.authorization_key()
        tls = self.url.startswith("wss://")
        if key is not None:
            options["additional_headers"] = {
                "Authorization": build_authorization_basic(self.cp.id, key)
            }
            if not tls:
                log.warning(
                    "security profile 1: the AuthorizationKey goes to %s unencrypted (ws://);"
                    " use wss:// outside a private network",
                    self.url,
                )
        if tls:
            security = self._security
            context = ssl.create_default_context(
                cafile=str(security.ca_file) if security.ca_file else None
            )
            if security.client_cert_file and security.client_key_file:
                context.load_cert_chain(security.client_cert_file, security.client_key_file)
            options["ssl"] = context
        return options

    def _ping_interval(self) -> float | None:
        seconds = self.cp.configuration.get_int("WebSocketPingInterval")
        return float(seconds) if seconds > 0 else None

    async def _serve(self, websocket: Any) -> None:
        """Serve one connection until it ends.

        The backoff starts afresh only once the central system has answered on this link: one
        that closes each link right after accepting it is not redialled every second.
        """
        session = OcppSession(
            self.cp,
            websocket,
            response_timeout=self._response_timeout,
            on_frame=self._on_frame,
            max_requests=self._max_requests,
        )
        self.session = session
        receiver = asyncio.create_task(session.start(), name="receiver")
        workers: list[asyncio.Task[Any]] = []
        try:
            if not await self._register(session, receiver):
                return
            self._state("connected")
            self.cp.outbox.go_online()
            workers = [
                asyncio.create_task(self.cp.outbox.deliver(session), name="delivery"),
                asyncio.create_task(self._heartbeat(), name="heartbeat"),
            ]
            self.cp.on_link(True)
            reboot = asyncio.create_task(self.cp.reboot_requested.wait())
            workers.append(reboot)
            await asyncio.wait([receiver, *workers], return_when=asyncio.FIRST_COMPLETED)
            if reboot.done():
                self._state("reset: closing the link to boot again")
                await websocket.close()
            elif not receiver.done():
                self._worker_ended(next(task for task in workers if task.done()))
                await websocket.close(1011, "charge point error")
        finally:
            self.session = None
            if session.answered:
                self.failures_in_a_row = 0
            self.cp.outbox.go_offline()
            await cancel_and_wait([*workers, receiver])

    @staticmethod
    def _worker_ended(task: asyncio.Task[Any]) -> None:
        """A worker of a live link ended: say why, then the link is redialled, never half alive."""
        error = None if task.cancelled() else task.exception()
        log.error(
            "link: %s stopped (%s); closing the link to redial",
            task.get_name(),
            repr(error) if error is not None else "ended",
            exc_info=error,
        )

    async def _register(self, session: OcppSession, receiver: asyncio.Task[None]) -> bool:
        """BootNotification until Accepted; False when the link dropped meanwhile."""
        if self.cp.registered:
            return True
        while not receiver.done():
            try:
                result = await session.send_call("BootNotification", self.cp.boot_info)
            except (CallError, TimeoutError) as error:
                log.warning("BootNotification failed: %s", error)
                interval = 30
            else:
                interval = int(result.get("interval", 0))
                if result["status"] == "Accepted":
                    self.cp.on_registered(interval)
                    return True
                log.warning("BootNotification %s; retrying in %d s", result["status"], interval)
            await asyncio.wait([receiver], timeout=max(interval, 1))
        return False

    async def _heartbeat(self) -> None:
        while True:
            interval = self.cp.configuration.get_int("HeartbeatInterval")
            await asyncio.sleep(interval if interval > 0 else 300)
            self.cp.outbox.send("Heartbeat", {})


def explain(error: BaseException) -> str:
    """One line an operator can act on, for the ways a connection to the CSMS fails."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the central system's certificate was refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed: {error.reason or error}"
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        if status == 401:
            return (
                "the central system refused the credentials (HTTP 401): check charge_point_id"
                " and the AuthorizationKey"
            )
        return f"the central system refused the connection (HTTP {status})"
    return str(error) or type(error).__name__
