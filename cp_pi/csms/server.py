"""The embedded central system: `ws://HOST:PORT/{chargePointId}`, subprotocol ocpp1.6.

It is the default CSMS of the demo, the bench page and the charge point's own test suite, so
it answers deterministically (transaction ids 1, 2, 3...; tags Accepted unless a list is set),
keeps every frame, and lets a caller await what the charge point sends instead of polling.
Serving a fleet for days, it keeps only the newest frames and meter values (`journal_limit`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping
from http import HTTPStatus
from pathlib import Path
from ssl import SSLContext
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ocpp.v16 import call
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from cp_pi.csms.files import FileServer
from cp_pi.csms.records import (
    CsmsTransaction,
    FrameJournal,
    FrameRecord,
    MeterValuesRecord,
    Misbehaviour,
    RecentFrames,
    StartKey,
)
from cp_pi.csms.session import CallErrorReceived, ChargePointSession, InvalidAnswer
from cp_pi.listening import CannotListen
from cp_pi.ocpp16.wire import basic_credentials, basic_password, hide_secrets_in, utc_now

__all__ = [
    "CallErrorReceived",
    "CentralSystem",
    "CsmsTransaction",
    "FrameRecord",
    "InvalidAnswer",
    "MeterValuesRecord",
    "run_csms",
]

log = logging.getLogger("cp_pi.csms")

SUBPROTOCOL = Subprotocol("ocpp1.6")

SERVING_JOURNAL_LIMIT = 10_000
"""Frames kept by a central system that serves for days (`cp-pi csms`, the one embedded in
`cp-pi run` and `cp-pi fleet`): about 6 MiB, enough for the bench and the log to look back on."""

BootStatus = Literal["Accepted", "Pending", "Rejected"]
Payload = dict[str, Any]


class CentralSystem:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        authorized_tags: Collection[str] | None = None,
        heartbeat_interval: int = 300,
        boot_status: BootStatus = "Accepted",
        *,
        ssl: SSLContext | None = None,
        passwords: Mapping[str, str] | None = None,
        journal_limit: int | None = None,
        parent_id_tags: Mapping[str, str] | None = None,
    ) -> None:
        """`journal_limit` bounds the frames kept, and the meter-value reports too: as many
        reports as frames, so every MeterValues the journal still shows has its report (a
        report weighs less than its frame). None keeps everything, as tests and the demo need.
        """
        self.host = host
        self.ssl = ssl
        """Serve wss:// with this context (security profile 2), ws:// when None."""
        self.passwords = passwords
        """Charge point id -> AuthorizationKey for HTTP Basic auth; None lets anyone in."""
        self.port = port
        self.authorized_tags = authorized_tags
        """None accepts every tag; otherwise tags outside the collection are Invalid."""
        self.tag_statuses: dict[str, str] = {}
        """idTag -> its status (Blocked, Expired, ...), looked up before `authorized_tags`."""
        self.parent_id_tags: Mapping[str, str] = parent_id_tags or {}
        """Tag -> its parentIdTag in every idTagInfo: tags with one parent form a group."""
        self.heartbeat_interval = heartbeat_interval
        self.boot_status: BootStatus = boot_status
        self.transactions: dict[int, CsmsTransaction] = {}
        self.transaction_ids: dict[StartKey, int] = {}
        """Each StartTransaction answered, so one resent finds its id without a search."""
        self.statuses: dict[tuple[str, int], tuple[str, str]] = {}
        """(charge point, connector) -> latest (status, errorCode)."""
        self.meter_values: deque[MeterValuesRecord] = deque(maxlen=journal_limit)
        self.misbehaviour: dict[str, list[Misbehaviour]] = {}
        """Action -> what to do with its next CALLs instead of answering (tests of retries)."""
        self.journal = FrameJournal(journal_limit)
        self._sessions: dict[str, ChargePointSession] = {}
        self._server: Server | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def refuse_next(self, action: str, count: int = 1, code: str = "InternalError") -> None:
        """Answer the next `count` CALLs of `action` with a CALLERROR instead of handling them."""
        self.misbehaviour.setdefault(action, []).extend([Misbehaviour(code)] * count)

    def ignore_next(self, action: str, count: int = 1) -> None:
        """Leave the next `count` CALLs of `action` unanswered (the sender must time out)."""
        self.misbehaviour.setdefault(action, []).extend([Misbehaviour(None)] * count)

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; after a stop, on the port picked before, so charge points find it again."""
        if self._server is not None:
            return
        # At DEBUG the websocket library logs the Authorization header and every frame.
        hide_secrets_in("websockets.server", "cp_pi.csms")
        try:
            self._server = await serve(
                self._serve_charge_point,
                self.host,
                self.port,
                subprotocols=[SUBPROTOCOL],
                process_request=self._admit,
                ssl=self.ssl,
                # A charge point that stopped answering must not hold up a stop for long.
                close_timeout=2,
            )
        except OSError as error:
            raise CannotListen(self.host, self.port, error) from error
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("central system listening on %s/{chargePointId}", self.url)

    async def stop(self) -> None:
        """Close every connection (code 1001, going away) and stop listening."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        for task in list(self._closing):
            await task

    @property
    def url(self) -> str:
        """The base URL a charge point appends its id to; the real port once started."""
        if self._server is None:
            raise RuntimeError("the central system is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}"

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """A charge point id in the path and, when passwords are set, its Basic credentials."""
        cp_id = _charge_point_id(request)
        if not cp_id:
            return connection.respond(
                HTTPStatus.NOT_FOUND, "expected ws://host:port/{chargePointId}\n"
            )
        if self.passwords is not None and not _credentials_match(
            request, cp_id, self.passwords.get(cp_id)
        ):
            log.warning("%s: refused: wrong or missing credentials", cp_id)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "credentials required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="cp-pi csms"'
            return response
        return None

    # -- the record -----------------------------------------------------------------------------

    @property
    def frames(self) -> RecentFrames:
        """The frames of every charge point, in the order they crossed the websocket.

        Positions count from the first frame ever, kept or not: `len(frames)` marks "from here".
        """
        return self.journal.frames

    @property
    def on_record(self) -> Callable[[FrameRecord], None] | None:
        return self.journal.on_record

    @on_record.setter
    def on_record(self, observer: Callable[[FrameRecord], None] | None) -> None:
        self.journal.on_record = observer

    async def wait_for_charge_point(self, cp_id: str, timeout: float = 10) -> None:
        try:
            async with asyncio.timeout(timeout):
                while cp_id not in self._sessions:
                    await self.journal.changed()
        except TimeoutError:
            raise TimeoutError(f"{cp_id} did not connect within {timeout} s") from None

    async def wait_for_call(
        self,
        cp_id: str,
        action: str,
        *,
        where: Callable[[Payload], bool] | None = None,
        after: int = 0,
        timeout: float = 10,
    ) -> FrameRecord:
        """The first CALL `action` from `cp_id` at position >= `after`, recorded or to come."""

        def match(entry: FrameRecord) -> bool:
            return (
                entry.direction == "rx"
                and entry.charge_point_id == cp_id
                and entry.is_call(action)
                and (where is None or where(entry.frame[3]))
            )

        return await self.journal.wait_for(
            match, after=after, timeout=timeout, what=f"{action} from {cp_id}"
        )

    # -- commands -------------------------------------------------------------------------------
    # Each returns the CALLRESULT payload as sent (camelCase), raises CallErrorReceived on a
    # CALLERROR, InvalidAnswer on a payload outside the schema, TimeoutError without an answer.

    async def unlock_connector(
        self, cp_id: str, connector_id: int, *, timeout: float = 10
    ) -> Payload:
        return await self._command(cp_id, call.UnlockConnector(connector_id=connector_id), timeout)

    async def remote_start(
        self,
        cp_id: str,
        id_tag: str,
        connector_id: int | None = None,
        *,
        charging_profile: Payload | None = None,
        timeout: float = 10,
    ) -> Payload:
        request = call.RemoteStartTransaction(
            id_tag=id_tag, connector_id=connector_id, charging_profile=charging_profile
        )
        return await self._command(cp_id, request, timeout)

    async def remote_stop(self, cp_id: str, transaction_id: int, *, timeout: float = 10) -> Payload:
        request = call.RemoteStopTransaction(transaction_id=transaction_id)
        return await self._command(cp_id, request, timeout)

    async def reset(
        self, cp_id: str, kind: Literal["Soft", "Hard"] = "Soft", *, timeout: float = 10
    ) -> Payload:
        return await self._command(cp_id, call.Reset(type=kind), timeout)

    async def change_availability(
        self,
        cp_id: str,
        connector_id: int,
        kind: Literal["Operative", "Inoperative"] = "Operative",
        *,
        timeout: float = 10,
    ) -> Payload:
        request = call.ChangeAvailability(connector_id=connector_id, type=kind)
        return await self._command(cp_id, request, timeout)

    async def change_configuration(
        self, cp_id: str, key: str, value: str, *, timeout: float = 10
    ) -> Payload:
        request = call.ChangeConfiguration(key=key, value=value)
        return await self._command(cp_id, request, timeout)

    async def get_configuration(
        self, cp_id: str, keys: list[str] | None = None, *, timeout: float = 10
    ) -> Payload:
        return await self._command(cp_id, call.GetConfiguration(key=keys), timeout)

    async def clear_cache(self, cp_id: str, *, timeout: float = 10) -> Payload:
        return await self._command(cp_id, call.ClearCache(), timeout)

    async def trigger_message(
        self,
        cp_id: str,
        requested_message: str,
        connector_id: int | None = None,
        *,
        timeout: float = 10,
    ) -> Payload:
        request = call.TriggerMessage(
            requested_message=requested_message, connector_id=connector_id
        )
        return await self._command(cp_id, request, timeout)

    async def data_transfer(
        self,
        cp_id: str,
        vendor_id: str,
        message_id: str | None = None,
        data: str | None = None,
        *,
        timeout: float = 10,
    ) -> Payload:
        request = call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        return await self._command(cp_id, request, timeout)

    # Local Auth List Management and Reservation profiles.

    async def send_local_list(
        self,
        cp_id: str,
        list_version: int,
        entries: list[Payload] | None = None,
        update_type: Literal["Full", "Differential"] = "Full",
        *,
        timeout: float = 10,
    ) -> Payload:
        """``entries`` as they travel, ``{"idTag": ..., "idTagInfo": {...}}``; None leaves the
        list out of the request (an empty Full list)."""
        payload: Payload = {"listVersion": list_version, "updateType": update_type}
        if entries is not None:
            payload["localAuthorizationList"] = entries
        return await self._session(cp_id).request("SendLocalList", payload, timeout)

    async def get_local_list_version(self, cp_id: str, *, timeout: float = 10) -> Payload:
        return await self._command(cp_id, call.GetLocalListVersion(), timeout)

    async def reserve_now(
        self,
        cp_id: str,
        reservation_id: int,
        connector_id: int,
        id_tag: str,
        expiry_date: str,
        parent_id_tag: str | None = None,
        *,
        timeout: float = 10,
    ) -> Payload:
        request = call.ReserveNow(
            connector_id=connector_id,
            expiry_date=expiry_date,
            id_tag=id_tag,
            reservation_id=reservation_id,
            parent_id_tag=parent_id_tag,
        )
        return await self._command(cp_id, request, timeout)

    async def cancel_reservation(
        self, cp_id: str, reservation_id: int, *, timeout: float = 10
    ) -> Payload:
        return await self._command(
            cp_id, call.CancelReservation(reservation_id=reservation_id), timeout
        )

    async def update_firmware(
        self,
        cp_id: str,
        location: str,
        retrieve_date: str | None = None,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        timeout: float = 10,
    ) -> Payload:
        """UpdateFirmware; ``retrieve_date`` None: now."""
        request = call.UpdateFirmware(
            location=location,
            retrieve_date=retrieve_date or utc_now(),
            retries=retries,
            retry_interval=retry_interval,
        )
        return await self._command(cp_id, request, timeout)

    async def get_diagnostics(
        self,
        cp_id: str,
        location: str,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
        timeout: float = 10,
    ) -> Payload:
        request = call.GetDiagnostics(
            location=location,
            retries=retries,
            retry_interval=retry_interval,
            start_time=start_time,
            stop_time=stop_time,
        )
        return await self._command(cp_id, request, timeout)

    # Smart Charging: profiles are given as OCPP payloads (camelCase), as a CSMS sends them.

    async def set_charging_profile(
        self, cp_id: str, connector_id: int, profile: Payload, *, timeout: float = 10
    ) -> Payload:
        request = call.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=profile)
        return await self._command(cp_id, request, timeout)

    async def clear_charging_profile(
        self,
        cp_id: str,
        *,
        id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
        timeout: float = 10,
    ) -> Payload:
        request = call.ClearChargingProfile(
            id=id,
            connector_id=connector_id,
            charging_profile_purpose=purpose,
            stack_level=stack_level,
        )
        return await self._command(cp_id, request, timeout)

    async def get_composite_schedule(
        self,
        cp_id: str,
        connector_id: int,
        duration: int,
        unit: Literal["A", "W"] | None = None,
        *,
        timeout: float = 10,
    ) -> Payload:
        request = call.GetCompositeSchedule(
            connector_id=connector_id, duration=duration, charging_rate_unit=unit
        )
        return await self._command(cp_id, request, timeout)

    async def send_raw(
        self, cp_id: str, text: str, *, unique_id: str | None = None, timeout: float = 10
    ) -> list[Any] | None:
        """Send any text, unchecked; return the frame answering `unique_id`, None if none did.

        For probing the charge point's CALLERRORs with frames the typed commands refuse to build.
        """
        session = self._session(cp_id)
        if unique_id is None:
            await session.send(text)
            return None
        try:
            return await session.exchange(text, unique_id, timeout)
        except TimeoutError:
            return None

    async def _command(self, cp_id: str, request: Any, timeout: float) -> Payload:
        return await self._session(cp_id).command(request, timeout)

    def _session(self, cp_id: str) -> ChargePointSession:
        try:
            return self._sessions[cp_id]
        except KeyError:
            raise ConnectionError(f"charge point {cp_id!r} is not connected") from None

    # -- connections ----------------------------------------------------------------------------

    async def _serve_charge_point(self, connection: ServerConnection) -> None:
        cp_id = _charge_point_id(connection.request)
        session = ChargePointSession(cp_id, connection, self)
        previous = self._sessions.get(cp_id)
        self._sessions[cp_id] = session
        log.info("%s connected from %s", cp_id, connection.remote_address)
        if previous is not None:
            # In the background: a dead peer would hold a close handshake for its full timeout.
            closing = asyncio.create_task(
                previous.connection.close(reason="replaced by a new connection")
            )
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self.journal.notify()
        try:
            await session.start()
        finally:
            if self._sessions.get(cp_id) is session:
                del self._sessions[cp_id]
            log.info("%s disconnected", cp_id)
            self.journal.notify()


def _charge_point_id(request: Request | None) -> str:
    """The last path segment, as OCPP-J puts it: ws://host:port/some/base/{chargePointId}."""
    path = urlsplit(request.path).path if request is not None else ""
    return unquote(path.rstrip("/").rpartition("/")[2])


def _credentials_match(request: Request, cp_id: str, expected: str | None) -> bool:
    """``expected`` is the AuthorizationKey as configured (hexadecimal or readable)."""
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    if expected is None or credentials is None:
        return False
    user, password = credentials
    return user == cp_id and hmac.compare_digest(password, basic_password(expected))


async def run_csms(
    host: str,
    port: int,
    authorized_tags: Collection[str] | None,
    *,
    files: Path | None = None,
    files_port: int = 0,
) -> int:
    """Serve until cancelled; :class:`CannotListen` when the address cannot be bound.

    ``files``: also serve this directory over HTTP (firmware to download, diagnostics PUT)."""
    csms = CentralSystem(
        host=host, port=port, authorized_tags=authorized_tags, journal_limit=SERVING_JOURNAL_LIMIT
    )
    file_server = FileServer(files, host=host, port=files_port) if files is not None else None
    await csms.start()
    try:
        if file_server is not None:
            file_server.start()
            print(f"files: {file_server.url}/ (GET and PUT)", flush=True)
        await asyncio.Event().wait()
    finally:
        if file_server is not None:
            file_server.stop()
        await csms.stop()
    return 0
