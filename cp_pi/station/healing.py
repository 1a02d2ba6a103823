"""Locks that come back by themselves: no charger in the field waits for a remote UnlockConnector.

While no transaction runs, a connector's lock belongs released (see
:func:`~cp_pi.core.healing.lock_care`). An empty socket found latched is released at once, and
its status is reported once that is over (never Available with the latch engaged). A lock fault
(the lock failed to move at a start or on UnlockConnector) is retried after a growing pause
(``heal_pause`` doubling up to ``heal_pause_max``); a cable plugged or removed is a moment to
retry at once. The drive itself keeps the coil's hard cap and minimum pause, runs under the
connector's ``busy`` lock like every other sequence, and never happens while the contactor is
closed. The feedback alone clears the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from cp_pi.core.healing import LockCare
from cp_pi.station.connector import Connector
from cp_pi.station.transactions import Spawn

log = logging.getLogger("cp_pi.charge_point")


class LockHealing:
    def __init__(self, *, refresh: Callable[[], None], spawn: Spawn) -> None:
        self._refresh = refresh
        self._spawn = spawn
        #: Connectors looked after, each with the event that cuts its pause short.
        self._wake: dict[int, asyncio.Event] = {}
        #: Connectors whose empty socket is being released: their status waits for the result.
        self._releasing: set[int] = set()

    def look_at(self, connector: Connector) -> None:
        """Called after every change: start looking after a lock that needs it."""
        care = connector.lock_care()
        if care is LockCare.NONE:
            return
        at_once = care is LockCare.RELEASE_NOW
        if at_once:
            self._releasing.add(connector.id)
        wake = self._wake.get(connector.id)
        if wake is not None:  # already looked after, maybe in the middle of a long pause
            if at_once:
                wake.set()
            return
        wake = asyncio.Event()
        self._wake[connector.id] = wake
        self._spawn(self._look_after(connector, wake, at_once=at_once))

    def holds_status(self, connector: Connector) -> bool:
        """The lock of this empty socket is being released; report its status after that."""
        return connector.id in self._releasing

    def cable_changed(self, connector: Connector) -> None:
        """A cable plugged or removed: a faulted lock is retried now, not after its pause."""
        wake = self._wake.get(connector.id)
        if wake is not None:
            wake.set()

    async def _look_after(
        self, connector: Connector, wake: asyncio.Event, *, at_once: bool
    ) -> None:
        try:
            await self._heal(connector, wake, at_once=at_once)
        finally:
            del self._wake[connector.id]
            self._releasing.discard(connector.id)
        self._refresh()  # the status the lock settled on; a new need is looked at afresh

    async def _heal(self, connector: Connector, wake: asyncio.Event, *, at_once: bool) -> None:
        pauses = connector.hardware.heal_pauses()
        retry = 0
        while True:
            if not at_once:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(next(pauses)):
                        await wake.wait()
            wake.clear()
            at_once = False
            care = connector.lock_care()
            if care is LockCare.NONE:
                return
            retry += 1
            log.warning(
                "connector %d: %s with no transaction: driving the lock towards released"
                " (retry %d)",
                connector.id,
                "lock engaged in an empty socket"
                if care is LockCare.RELEASE_NOW
                else connector.hardware.reading().value,
                retry,
            )
            released = await self._release(connector)
            self._releasing.discard(connector.id)
            if released:
                log.info("connector %d: lock released: back in its safe state", connector.id)
                return
            self._refresh()

    @staticmethod
    async def _release(connector: Connector) -> bool:
        """Drive the lock towards released under the connector's ``busy`` lock; True once it
        no longer needs care (released, or a transaction took the connector meanwhile)."""
        async with connector.busy:
            if connector.lock_care() is LockCare.NONE:
                return True
            result = await connector.hardware.unlock()
        return result.ok and connector.lock_care() is LockCare.NONE
