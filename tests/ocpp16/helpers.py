"""Small readers over the CSMS's frame record, so tests read like the exchange they check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID


def mark(csms: CentralSystem) -> int:
    """A point in the frame record; later waits look only past it."""
    return len(csms.frames)


async def status_reached(
    csms: CentralSystem, status: str, *, after: int, error_code: str = "NoError", connector: int = 1
) -> int:
    """Wait for a StatusNotification; return its index in the frame record."""
    record = await csms.wait_for_call(
        CP_ID,
        "StatusNotification",
        where=lambda p: (
            p["connectorId"] == connector and p["status"] == status and p["errorCode"] == error_code
        ),
        after=after,
    )
    return csms.frames.index(record)


async def call_index(csms: CentralSystem, action: str, *, after: int, **fields: Any) -> int:
    record = await csms.wait_for_call(
        CP_ID, action, where=lambda p: all(p.get(k) == v for k, v in fields.items()), after=after
    )
    return csms.frames.index(record)


def calls(csms: CentralSystem, action: str, *, after: int = 0) -> list[dict[str, Any]]:
    """Payloads of the CALLs the charge point sent with that action."""
    return [
        r.frame[3]
        for r in csms.frames[after:]
        if r.direction == "rx" and r.frame[0] == 2 and r.frame[2] == action
    ]


def answer_index(csms: CentralSystem, action: str, *, after: int) -> int:
    """Index of the charge point's CALLRESULT to the CSMS's last CALL of that action."""
    ids = [
        r.frame[1]
        for r in csms.frames[after:]
        if r.direction == "tx" and r.frame[0] == 2 and r.frame[2] == action
    ]
    for index, record in enumerate(csms.frames):
        if index >= after and record.direction == "rx" and record.frame[:2] == [3, ids[-1]]:
            return index
    raise AssertionError(f"no CALLRESULT for {action}")


async def until(station: Station, predicate: Callable[[], bool], *, timeout: float = 15) -> None:
    """Wait for the charge point's state to satisfy `predicate` (woken by its state listeners)."""
    reached = asyncio.Event()

    def check() -> None:
        if predicate():
            reached.set()

    charger = station.charger
    charger.subscribe(check)
    try:
        check()
        await asyncio.wait_for(reached.wait(), timeout)
    finally:
        charger.unsubscribe(check)


class LogWatch(logging.Handler):
    """Await log lines instead of sleeping and hoping they were written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._changed.set()

    async def seen(self, text: str, *, times: int = 1, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while sum(text in line for line in self.lines) < times:
                self._changed.clear()
                await self._changed.wait()
