"""The websocket link to the central system: connect, boot, heartbeat, deliver, and redial forever.

BootNotification is sent once per start (or reset), not on every reconnect; until it is accepted
nothing else is sent (Pending and Rejected are retried after the interval the CSMS gave). After a
reset the link either boots again in this process (a fleet, the bench) or ends, so that
``cp-pi run`` can start the process afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ocpp.v16.enums import ConfigurationKey as K
from websockets.asyncio.client import connect
from websockets.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

from cp_pi.config import SecurityConfig
from cp_pi.ocpp16.flow import BoundedConnection
from cp_pi.ocpp16.session import MAX_REQUESTS, FrameObserver, OcppSession
from cp_pi.ocpp16.wire import basic_authorization, hide_secrets_in
from cp_pi.station.charger import Charger
from cp_pi.station.outbox import CallError
from cp_pi.tasks import cancel_and_wait

log = logging.getLogger("cp_pi.link")

SUBPROTOCOL = "ocpp1.6"
#: How the link's state begins after a failed attempt; the reason and the next attempt follow.
CANNOT_CONNECT = "cannot connect: "
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
        charger: Charger,
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
        self.cp = charger
        self._max_requests = max_requests
        #: The session of the current connection, None between connections.
        self.session: OcppSession | None = None
        #: Dials in a row that failed or whose link ended before the central system answered on
        #: it; the redial backoff grows with it.
        self.failures_in_a_row = 0
        self._boot_again_after_reset = boot_again_after_reset
        self.url = f"{csms_url.rstrip('/')}/{charger.id}"
        self._security = security or SecurityConfig()
        self._on_frame = on_frame
        self._on_state = on_state
        self._response_timeout = response_timeout
        self._backoff_first = backoff_first
        # At DEBUG the websocket library logs the Authorization header and every frame.
        hide_secrets_in("websockets.client", "cp_pi.ocpp")
        self._heartbeat_interval_changed = asyncio.Event()
        charger.configuration.subscribe(self._configuration_changed)

    def _state(self, text: str, level: int = logging.INFO) -> None:
        log.log(level, "link: %s", text)
        if self._on_state is not None:
            self._on_state(text)

    async def run(self) -> None:
        """Stay connected until cancelled, or until a reset when the process restarts for it."""
        while True:
            # Said once; while the central system stays unreachable, each failure is its line.
            self._state(
                f"connecting to {self.url}",
                logging.INFO if self.failures_in_a_row == 0 else logging.DEBUG,
            )
            failure = None
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
                failure = explain(error, self.url)
            finally:
                self.cp.on_link(False)
            if self.cp.reboot_requested.is_set():
                if not self._boot_again_after_reset:
                    return
                self.cp.restart()
                continue
            delay = backoff_delay(self.failures_in_a_row, first=self._backoff_first)
            self.failures_in_a_row += 1
            if failure is None:
                self._state(f"disconnected; redialling in {delay:.1f} s")
            else:
                at = datetime.now() + timedelta(seconds=delay)
                self._state(
                    f"{CANNOT_CONNECT}{failure}; next attempt at {at:%H:%M:%S} (in {delay:.1f} s)",
                    logging.WARNING,
                )
            # A restart asked for meanwhile (a firmware rollback) does not wait for the link.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.cp.reboot_requested.wait()
            if self.cp.reboot_requested.is_set() and not self._boot_again_after_reset:
                return

    def _credentials(self) -> dict[str, Any]:
        """Basic auth (profiles 1 and 2) and TLS (profile 2; 3 with a client certificate).

        A ``wss://`` URL is only ever dialled with TLS, and a failed handshake is retried as
        it is: there is no fallback to plain text.
        """
        options: dict[str, Any] = {}
        key = self.cp.configuration.authorization_key()
        tls = self.url.startswith("wss://")
        if key is not None:
            options["additional_headers"] = {"Authorization": basic_authorization(self.cp.id, key)}
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
        seconds = self.cp.configuration.get_int(K.web_socket_ping_interval)
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
            except (CallError, TimeoutError, ConnectionError) as error:
                log.warning("BootNotification failed: %s", error)
                interval = 30
            else:
                interval = int(result.get("interval", 0))
                self.cp.clock.adopt(result["currentTime"])
                if result["status"] == "Accepted":
                    self.cp.on_registered(interval)
                    return True
                log.warning("BootNotification %s; retrying in %d s", result["status"], interval)
            await asyncio.wait([receiver], timeout=max(interval, 1))
        return False

    def _configuration_changed(self, key: str, _value: str) -> None:
        if key == K.heartbeat_interval:
            self._heartbeat_interval_changed.set()

    async def _heartbeat(self) -> None:
        """A Heartbeat every HeartbeatInterval. A new interval (ChangeConfiguration, a
        BootNotification's answer) counts at once from the last Heartbeat, not after the old
        interval has run out."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            self._heartbeat_interval_changed.clear()
            interval = self.cp.configuration.get_int(K.heartbeat_interval)
            due = last + (interval if interval > 0 else 300)
            try:
                async with asyncio.timeout_at(due):
                    await self._heartbeat_interval_changed.wait()
                continue
            except TimeoutError:
                pass
            self.cp.outbox.send("Heartbeat", {}).add_done_callback(self._heard_time)
            last = loop.time()

    def _heard_time(self, answer: asyncio.Future[dict[str, Any]]) -> None:
        """A Heartbeat's answer carries the central system's time (a lost one says nothing)."""
        if not answer.cancelled() and answer.exception() is None:
            self.cp.clock.adopt(answer.result()["currentTime"])


#: OpenSSL's reasons when a TLS client gets a plain-text answer (an HTTP response).
_PLAIN_TEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"})
#: OpenSSL's verify codes: not for this host name or IP address; outside its validity period.
_WRONG_HOST, _EXPIRED, _NOT_YET_VALID = frozenset({62, 64}), 10, 9


def explain(error: BaseException, url: str) -> str:
    """One line an operator can act on, for the ways a connection to the CSMS fails.

    Plain words instead of the library's text: what went wrong and which setting to look at.
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    where = f"{host}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return _certificate_refused(error, host)
    if isinstance(error, ssl.SSLError):
        if error.reason in _PLAIN_TEXT_REASONS:
            return f"TLS: {where} speaks plain ws://, not wss:// (fix csms_url's scheme or port)"
        return f"TLS handshake with {where} failed: {error.reason or error}"
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        if status == 401:
            return (
                f"password refused by {where} (HTTP 401; check charge_point_id and"
                " security.authorization_key)"
            )
        if status == 404:
            return f"{where} knows no such path (HTTP 404; check csms_url and charge_point_id)"
        return f"{where} refused the connection (HTTP {status})"
    if isinstance(error, InvalidMessage) or (
        parts.scheme == "wss" and isinstance(error, ConnectionResetError | ssl.SSLEOFError)
    ):
        if parts.scheme == "wss":
            return (
                f"TLS: {where} hung up during the handshake (does it speak plain ws://"
                " on this port?)"
            )
        return f"{where} does not answer as a websocket server (a wss:// one? check csms_url)"
    if isinstance(error, socket.gaierror):
        return f"host name {host} not found (check csms_url, DNS and the network)"
    if isinstance(error, ConnectionRefusedError) or "[Errno 111]" in str(error):
        # Python 3.11 joins the failures of several addresses into one plain OSError.
        return f"connection refused by {where} (is the central system running, on that port?)"
    if isinstance(error, TimeoutError):
        return f"timed out: no answer from {where} (a firewall, or the wrong address?)"
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"{where} cannot be reached: {error.strerror} (is the network up?)"
    if isinstance(error, OSError) and error.strerror:
        return f"{where}: {error.strerror}"
    return f"{where}: {error or type(error).__name__}"


def _certificate_refused(error: ssl.SSLCertVerificationError, host: str) -> str:
    code = error.verify_code
    if code in _WRONG_HOST:
        return f"TLS: the central system's certificate is not for {host} (wrong host)"
    if code == _EXPIRED:
        return "TLS: the central system's certificate has expired (or this clock is wrong)"
    if code == _NOT_YET_VALID:
        return "TLS: the central system's certificate is not valid yet (is this clock set?)"
    return (
        f"TLS: certificate not trusted ({error.verify_message}; set security.ca_file to the"
        " CA that signed it)"
    )
