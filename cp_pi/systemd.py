"""Telling systemd how the charge point is doing: ready, status line, watchdog, reloading, stopping.

The sd_notify protocol is spoken by hand rather than through a library: it is one datagram of
``KEY=value`` lines to the socket named in ``NOTIFY_SOCKET``, systemd documents it as a stable
interface and ships a self-contained reference implementation, and the PyPI packages for it are
unmaintained (``sdnotify`` has not changed since 2017). Outside systemd ``NOTIFY_SOCKET`` is unset
and every call is a silent no-op, so the same code runs on a developer's machine.

systemd must never take the charge point down: a failed send is logged once and otherwise
ignored, and the socket is non-blocking so a stalled service manager cannot stall the event loop
that watches the lock and the contactor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """One connection to the service manager's notification socket, or none at all."""

    def __init__(self, address: str | None, watchdog_interval: float | None = None) -> None:
        """``address`` is a socket path, or an abstract name with a leading NUL; None disables."""
        self._address = address
        self._watchdog_interval = watchdog_interval if address is not None else None
        self._socket: socket.socket | None = None
        self._warned = False
        if address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` as systemd sets them."""
        env = os.environ if environ is None else environ
        return cls(_socket_address(env.get("NOTIFY_SOCKET")), _watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        """True while there is a service manager to talk to."""
        return self._socket is not None

    def ready(self) -> None:
        """Start-up is complete: systemd releases units ordered after this one."""
        self._send("READY=1")

    def status(self, text: str) -> None:
        """A one-line state shown by ``systemctl status``."""
        # A newline would start a new assignment inside the datagram.
        self._send("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> None:
        """Still alive: resets systemd's ``WatchdogSec=`` timer."""
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A reset restarts the process in place: systemd waits for the next ``READY=1``."""
        self._send("RELOADING=1")

    def stopping(self) -> None:
        """Shutdown has begun, so systemd shows "deactivating" rather than a hang."""
        self._send("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of ``WatchdogSec=``), or None when no watchdog is armed."""
        return self._watchdog_interval

    async def run_watchdog(self) -> None:
        """Ping from the event loop until cancelled.

        Pinging from the loop rather than a thread is the point: if the loop blocks, the pings
        stop and systemd restarts the service.
        """
        interval = self.watchdog_interval()
        if interval is None:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Release the socket; later notifications are no-ops."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError as error:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "cannot notify systemd at %r: %s (further failures are not logged)",
                    self._address,
                    error,
                )


def _socket_address(value: str | None) -> str | None:
    """The address to send to: a path as is, an abstract name ("@name") with a leading NUL."""
    if not value:
        return None
    if value.startswith("/"):
        return value
    if value.startswith("@"):
        return "\0" + value[1:]
    # Like systemd's reference code, other address kinds (vsock: and the like) are not spoken.
    logger.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket; ignored", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout, as systemd recommends, if the watchdog is meant for us."""
    usec = env.get("WATCHDOG_USEC")
    if usec is None:
        return None
    pid = env.get("WATCHDOG_PID")
    try:
        timeout = int(usec)
        # A watchdog armed for another process (a parent that exec'd us kept it) is not ours.
        if pid is not None and int(pid) != os.getpid():
            return None
    except ValueError:
        logger.warning("WATCHDOG_USEC=%r / WATCHDOG_PID=%r unreadable; no watchdog", usec, pid)
        return None
    if timeout <= 0:
        return None
    return timeout / 1_000_000 / 2
