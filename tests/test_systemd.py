"""The sd_notify datagrams as systemd receives them, on real AF_UNIX sockets, and the unit file."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cp_pi.systemd import Notifier

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "cp-pi.service"


class ServiceManager:
    """The receiving end of NOTIFY_SOCKET, as systemd binds it."""

    def __init__(self, address: str, notify_socket: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.notify_socket = notify_socket

    def notifier(self, **environ: str) -> Notifier:
        return Notifier.from_environment({"NOTIFY_SOCKET": self.notify_socket, **environ})

    async def receive(self) -> bytes:
        """The next datagram; a notification that never comes fails the test after 5 s."""
        async with asyncio.timeout(5):
            return await asyncio.get_running_loop().sock_recv(self.sock, 4096)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServiceManager]:
    path = str(tmp_path / "notify")
    receiver = ServiceManager(path, path)
    yield receiver
    receiver.sock.close()


@pytest.fixture
def abstract_manager() -> Iterator[ServiceManager]:
    name = f"cp-pi-test-{uuid.uuid4().hex}"
    receiver = ServiceManager("\0" + name, "@" + name)
    yield receiver
    receiver.sock.close()


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        (Notifier.ready, b"READY=1"),
        (Notifier.watchdog, b"WATCHDOG=1"),
        (Notifier.stopping, b"STOPPING=1"),
    ],
)
async def test_each_notification_arrives_as_its_exact_datagram(
    manager: ServiceManager, notify: Callable[[Notifier], None], expected: bytes
) -> None:
    notifier = manager.notifier()
    notify(notifier)
    assert await manager.receive() == expected
    notifier.close()


async def test_status_line_arrives_as_one_assignment(manager: ServiceManager) -> None:
    notifier = manager.notifier()
    notifier.status("CSMS connected")
    notifier.status("link down\nretrying")
    assert await manager.receive() == b"STATUS=CSMS connected"
    assert await manager.receive() == b"STATUS=link down retrying"
    notifier.close()


async def test_abstract_socket_receives_notifications(abstract_manager: ServiceManager) -> None:
    notifier = abstract_manager.notifier()
    assert notifier.enabled
    notifier.ready()
    assert await abstract_manager.receive() == b"READY=1"
    notifier.close()


async def test_without_notify_socket_every_call_is_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready()
    notifier.status("running")
    notifier.watchdog()
    notifier.stopping()
    await notifier.run_watchdog()  # returns at once: nothing to ping
    notifier.close()
    assert caplog.records == []


def test_unreachable_service_manager_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.WARNING, logger="cp_pi.systemd"):
        notifier.ready()
        notifier.status("still here")
        notifier.watchdog()
    notifier.close()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "nobody-listens" in caplog.records[0].getMessage()


def test_notifications_after_close_go_nowhere(manager: ServiceManager) -> None:
    notifier = manager.notifier()
    notifier.close()
    notifier.ready()
    assert not notifier.enabled
    with pytest.raises(BlockingIOError):
        manager.sock.recv(4096)


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "not-a-number"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
    ids=["half-of-WatchdogSec", "our-pid", "another-pid", "garbage", "zero", "unset"],
)
def test_watchdog_interval_is_half_the_timeout_and_only_ours(
    manager: ServiceManager, environ: dict[str, str], interval: float | None
) -> None:
    notifier = manager.notifier(**environ)
    assert notifier.watchdog_interval() == interval
    notifier.close()


async def test_run_watchdog_pings_until_cancelled(manager: ServiceManager) -> None:
    notifier = manager.notifier(WATCHDOG_USEC="20000")  # a ping every 10 ms
    pinger = asyncio.create_task(notifier.run_watchdog())
    pings = [await manager.receive() for _ in range(3)]
    assert pings == [b"WATCHDOG=1"] * 3
    assert not pinger.done()
    pinger.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pinger
    notifier.close()


async def test_run_watchdog_returns_at_once_when_no_watchdog_is_armed(
    manager: ServiceManager,
) -> None:
    notifier = manager.notifier()
    async with asyncio.timeout(5):
        await notifier.run_watchdog()
    with pytest.raises(BlockingIOError):
        manager.sock.recv(4096)
    notifier.close()


def verifiable_copy(unit: Path, directory: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists on this machine.

    ``systemd-analyze verify`` fails when the ExecStart binary is missing, and the real one lives
    in the installed virtualenv; everything else is checked as shipped.
    """
    lines = unit.read_text().splitlines()
    swapped = [
        f"ExecStart={sys.executable} -m cp_pi run" if line.startswith("ExecStart=") else line
        for line in lines
    ]
    assert swapped != lines, "the unit has no ExecStart="
    copy = directory / unit.name
    copy.write_text("\n".join(swapped) + "\n")
    return copy


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian package: systemd)",
)
def test_service_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = verifiable_copy(UNIT, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Warnings about our own file (unknown keys, bad values) count as failures too.
    complaints = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []
