"""`cp-pi status`'s socket: the running charge point answers on it, `commands/status.py` asks.

A unix socket rather than a port: nothing reaches it from the network, the file's mode keeps
strangers out, and the kernel tells who is asking (SO_PEERCRED), so the service answers only
root, its own user and the members of its group. The service writes one JSON document per
connection and closes it; there is no request to parse.

The socket lives in the service's runtime directory (``/run/cp-pi`` under systemd, named by
``RUNTIME_DIRECTORY``), else in the data directory, next to the run lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cp_pi import __version__
from cp_pi.core.backlog import duration
from cp_pi.store import transaction_name

if TYPE_CHECKING:
    from cp_pi.station.charger import Charger

log = logging.getLogger("cp_pi.status")

SOCKET_NAME = "status.sock"
#: Owner and group may ask; SO_PEERCRED narrows the group to the service's own.
SOCKET_MODE = 0o660
ANSWER_TIMEOUT = 5.0


def served_in(environ: Mapping[str, str], data_dir: Path) -> Path:
    """Where `cp-pi run` serves: the runtime directory systemd made for it, else the data dir."""
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return (Path(runtime) if runtime else data_dir) / SOCKET_NAME


def public_url(url: str) -> str:
    """The URL without what may be secret in it: user, password, query and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- the service's side ------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LinkWatch:
    """The link as `cp-pi status` shows it, kept up to date from the link's state lines."""

    def __init__(self, *, failure_prefix: str) -> None:
        self._failure_prefix = failure_prefix
        self.state = "starting"
        self.connected_since: str | None = None
        self.last_error: str | None = None
        self.last_error_at: str | None = None

    def on_state(self, text: str) -> None:
        self.state = text
        if text == "connected":
            self.connected_since = _now()
        else:
            self.connected_since = None
        if text.startswith(self._failure_prefix):
            self.last_error = text.removeprefix(self._failure_prefix)
            self.last_error_at = _now()

    def document(self, url: str) -> dict[str, Any]:
        return {
            "csms_url": public_url(url),
            "state": self.state,
            "connected_since": self.connected_since,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def status_document(charger: Charger, link: LinkWatch, url: str) -> dict[str, Any]:
    """What `cp-pi status --json` prints: the charge point's state with the link and version."""
    state = charger.state()
    del state["type"]
    for connector in state["connectors"]:
        tx = charger.connectors[connector["id"]].transaction
        connector["transaction_ref"] = None if tx is None else tx.ref
        connector["energy_wh"] = None if tx is None else connector["meter_wh"] - tx.meter_start
    return {"version": __version__, **state, "link": link.document(url)}


def may_ask(uid: int, groups: set[int], *, service_uid: int, service_gid: int) -> bool:
    """Root, the service's own user, and the members of its group; nobody else."""
    return uid in (0, service_uid) or service_gid in groups


def _peer_groups(pid: int, gid: int) -> set[int]:
    """The asking process's primary and supplementary groups (SO_PEERCRED has the first only)."""
    groups = {gid}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                groups.update(int(group) for group in line.split()[1:])
    return groups


class StatusServer:
    """Answers `cp-pi status` while `cp-pi run` runs; a failure here never stops the charging."""

    def __init__(self, path: Path, document: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._document = document
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        try:
            if await self._taken():
                log.error("status: another cp-pi answers at %s; not serving status", self.path)
                return
            self._server = await asyncio.start_unix_server(self._answer, path=str(self.path))
            os.chmod(self.path, SOCKET_MODE)
        except OSError as error:
            log.error(
                "status: cannot serve at %s (%s); `cp-pi status` will not answer", self.path, error
            )
            return
        log.debug("status: answering at %s", self.path)

    async def _taken(self) -> bool:
        """True when a live process answers at the path; a stale socket is removed."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return False
        if not stat.S_ISSOCK(mode):
            raise FileExistsError(f"{self.path} exists and is not a socket")
        try:
            _, writer = await asyncio.open_unix_connection(str(self.path))
        except OSError:
            self.path.unlink()  # left behind by a process that died
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                writer.write(json.dumps(self._answer_for(writer)).encode() + b"\n")
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the asker went away: nothing to tell it
        finally:
            writer.close()

    def _answer_for(self, writer: asyncio.StreamWriter) -> dict[str, Any]:
        sock = writer.get_extra_info("socket")
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", credentials)
        groups = _peer_groups(pid, gid)
        if not may_ask(uid, groups, service_uid=os.geteuid(), service_gid=os.getegid()):
            log.warning("status: refused to tell uid %d (pid %d), not of this service", uid, pid)
            return {"error": "not allowed: ask as root, as the service's user or in its group"}
        return self._document()


# -- the command's side ------------------------------------------------------------------------


class CannotAsk(Exception):
    """The service may be running, but did not tell (no permission, no answer)."""


def ask(path: Path, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
    """The service's status document; FileNotFoundError or ConnectionRefusedError: not running."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except PermissionError:
            raise CannotAsk(
                f"not allowed to ask the charge point at {path}: use sudo, or join its group"
            ) from None
        answer = b""
        try:
            while chunk := client.recv(65536):
                answer += chunk
        except TimeoutError:
            raise CannotAsk(f"the charge point at {path} did not answer in {timeout:g} s") from None
    try:
        document: dict[str, Any] = json.loads(answer)
    except ValueError:
        raise CannotAsk(f"the charge point at {path} gave an answer that is not JSON") from None
    if "error" in document:
        raise CannotAsk(f"the charge point at {path} says: {document['error']}")
    return document


def render(document: dict[str, Any]) -> str:
    """A few lines an operator reads at a glance."""
    link = document["link"]
    lines = [
        f"cp-pi {document['version']}, charge point {document['charge_point_id']}:"
        f" {document['status']}"
    ]
    if link["connected_since"]:
        since = link["connected_since"]
        lines.append(f"link: connected to {link['csms_url']} since {_local(since)} ({_ago(since)})")
    else:
        lines.append(f"link: not connected to {link['csms_url']}: {link['state']}")
    if link["last_error"]:
        lines.append(f"  last error at {_local(link['last_error_at'])}: {link['last_error']}")
    for connector in document["connectors"]:
        lines.extend(_connector_lines(connector))
    lines.append(f"queued transaction messages: {document['queued_transaction_messages']}")
    if document.get("store_degraded"):
        lines.append(f"message store in memory: {document['store_degraded']}")
    return "\n".join(lines)


def _connector_lines(connector: dict[str, Any]) -> list[str]:
    if not connector["has_lock"]:
        lock = "fixed cable"
    else:
        lock = "lock engaged" if connector["locked"] else "lock released"
    contactor = "contactor closed" if connector["contactor_closed"] else "contactor open"
    lines = [
        f"connector {connector['id']}: {connector['status']} ({connector['error_code']}),"
        f" {connector['connector_status']}, {lock}, {contactor}"
    ]
    if connector["transaction_ref"] is not None:
        name = transaction_name(connector["transaction_id"], connector["transaction_ref"])
        if connector["transaction_id"] is None:
            name += " (id not known yet)"
        lines.append(f"  {name} for {connector['id_tag']}: {connector['energy_wh']} Wh")
    if (reservation := connector.get("reservation")) is not None:
        lines.append(
            f"  reservation {reservation['id']} for {reservation['id_tag']}"
            f" until {_local(reservation['expires'])}"
        )
    return lines


def _local(stamp: str) -> str:
    return f"{datetime.fromisoformat(stamp).astimezone():%Y-%m-%d %H:%M:%S}"


def _ago(stamp: str) -> str:
    return duration((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds())
