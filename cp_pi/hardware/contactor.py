"""The contactor that switches energy to the cable, and its auxiliary contact.

The output says what was commanded; only the auxiliary contact says what the main contacts did.
A contactor whose aux contact stays closed after the output dropped is welded: the cable is
live, and the lock must stay engaged. Confirmation is awaited on the aux contact's events, not
polled. A safety trip may open it from a pin driver's thread (:meth:`trip`), so the command and
the output level change together under one small lock.

The aux contact follows the output a few tens of milliseconds late, whoever dropped it: a
command, a trip, or the safety net on SIGTERM. For ``confirm_timeout`` after any drop the
contactor is *settling*, so that a reading taken meanwhile is a transition, not a weld; a contact
still closed after that is a weld, and :meth:`Contactor.open` says so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalOutputDevice, Factory

from cp_pi.config import CONTACTOR, ContactorConfig
from cp_pi.core.reading import ConnectorReading, ContactorOutcome, ContactorResult
from cp_pi.hardware import safety
from cp_pi.hardware.inputs import AuxContact, PinReadError

logger = logging.getLogger("cp_pi.hardware")

_CLOSED = ContactorResult(ContactorOutcome.CLOSED)
_OPEN = ContactorResult(ContactorOutcome.OPEN)
_FAILED_TO_CLOSE = ContactorResult(
    ContactorOutcome.FAILED, fault=ConnectorReading.CONTACTOR_FAILED_TO_CLOSE
)
_WELDED = ContactorResult(ContactorOutcome.FAILED, fault=ConnectorReading.CONTACTOR_WELDED)


class Contactor:
    """The output, and the aux contact it receives ready-made (None: the contactor has none).

    ``on_change`` (on the loop) and ``on_edge`` (on the pin driver's thread) hear of the aux
    contact's moves; the connector that receives this contactor attaches them.
    """

    def __init__(
        self,
        connector_id: int,
        config: ContactorConfig,
        aux: AuxContact | None,
        *,
        pin_factory: Factory,
    ) -> None:
        self._connector_id = connector_id
        self._config = config
        self.on_change: Callable[[], object] | None = None
        self.on_edge: Callable[[], object] | None = None
        self._aux_changed = asyncio.Event()
        # Each change of direction bumps this, so a wait for an older command knows it was
        # overtaken; a second command in the same direction joins the wait under way.
        self._command = 0
        self._awaiting: bool | None = None
        self.commanded_closed = False
        self._confirming = False
        #: time.monotonic() when the output last dropped from on; None before any drop.
        self._dropped_at: float | None = None
        # Re-entrant: a pin wired straight back to an input may report its edge synchronously.
        self._switching = threading.RLock()
        #: The reading that made :meth:`trip` open the contactor, until the next close.
        self.tripped: ConnectorReading | None = None
        self._aux = aux
        if aux is not None:
            aux.on_change = self._aux_moved
            aux.on_edge = self._aux_edge
        self._output = DigitalOutputDevice(config.pin, initial_value=False, pin_factory=pin_factory)
        # The safety net switches off through the contactor, which then knows to wait for its
        # aux contact instead of calling the contact's late opening a weld.
        self._switch_off = _SwitchOff(self)
        safety.register(self._switch_off, {CONTACTOR: config.pin})

    @property
    def pins(self) -> dict[str, int]:
        """``{role: BCM pin}``: the output and the aux contact."""
        return {CONTACTOR: self._config.pin} | ({} if self._aux is None else self._aux.pins)

    @property
    def feedback_closed(self) -> bool | None:
        """The aux contact, live; None when the contactor has none.

        Raises :class:`PinReadError` when the aux contact cannot be read.
        """
        return None if self._aux is None else self._aux.closed

    async def close(self) -> ContactorResult:
        """Close and wait for the aux contact; on failure the output stays commanded closed.

        Leaving it commanded lets ``reading()`` name the fault (CONTACTOR_FAILED_TO_CLOSE); the
        caller decides what to do next, normally :meth:`open`.
        """
        with self._switching:
            self.tripped = None
            self.commanded_closed = True
            self._output.on()
        logger.info("connector %d: contactor closing", self._connector_id)
        if not await self._confirm(closed=True):
            logger.error("connector %d: contactor did not confirm closing", self._connector_id)
            return _FAILED_TO_CLOSE
        return _CLOSED

    async def open(self) -> ContactorResult:
        """Drop the output at once, then wait for the aux contact; False means welded."""
        self.outputs_off()
        logger.info("connector %d: contactor opening", self._connector_id)
        return await self.confirm_open()

    async def confirm_open(self) -> ContactorResult:
        """Wait for the aux contact to follow the output off (after a stop, SIGTERM, a trip);
        False, and an error line, when it stays closed: welded."""
        if not await self._confirm(closed=False):
            logger.error(
                "connector %d: contactor welded: aux contact still closed %.1f s after opening",
                self._connector_id,
                self._config.confirm_timeout,
            )
            return _WELDED
        return _OPEN

    @property
    def settling(self) -> bool:
        """Waiting for the aux contact to follow a command or a drop of the output."""
        if self._confirming:
            return True
        dropped = self._dropped_at
        return dropped is not None and time.monotonic() - dropped < self._config.confirm_timeout

    def outputs_off(self) -> None:
        """Output off at once; synchronous and safe in a signal handler (no loop, no await)."""
        with self._switching:
            was_on = self.commanded_closed or bool(self._output.value)
            self.commanded_closed = False
            self._output.off()
            if was_on:
                self._dropped_at = time.monotonic()

    def trip(self, reading: ConnectorReading | None) -> bool:
        """Drop the output if it is commanded closed, naming the fault (None: no fault to act on,
        e.g. no cable); True when it was.

        Safe from any thread: a pin driver's edge handler calls it.
        """
        with self._switching:
            if not self.commanded_closed:
                return False
            self.commanded_closed = False
            self._output.off()
            self._dropped_at = time.monotonic()
            self.tripped = reading
            return True

    def release(self) -> None:
        """Output off, then give the pins back."""
        self.outputs_off()
        safety.unregister(self._switch_off)
        self._output.close()
        if self._aux is not None:
            self._aux.release()

    async def _confirm(self, *, closed: bool) -> bool:
        if self._aux is None:
            return True
        if self._awaiting is not closed:
            self._command += 1
            self._awaiting = closed
            self._aux_changed.set()  # wakes a wait for an older command, which then gives up
        command = self._command
        self._confirming = True
        try:
            async with asyncio.timeout(self._config.confirm_timeout):
                while command == self._command:
                    if self._aux_reads(closed):
                        return True
                    self._aux_changed.clear()
                    await self._aux_changed.wait()
                return False
        except TimeoutError:
            return False
        finally:
            if command == self._command:
                self._confirming = False
                self._awaiting = None
                self._dropped_at = None  # the aux contact has spoken (or was waited for)

    def _aux_reads(self, closed: bool) -> bool:
        try:
            return self.feedback_closed is closed
        except PinReadError:  # unreadable is not confirmed
            logger.exception("connector %d: contactor aux contact unreadable", self._connector_id)
            return False

    def _aux_moved(self) -> None:
        self._aux_changed.set()
        if self.on_change is not None:
            self.on_change()

    def _aux_edge(self) -> None:
        if self.on_edge is not None:
            self.on_edge()


class _SwitchOff:
    """What the safety net holds for a contactor (see :class:`cp_pi.hardware.safety.Output`)."""

    def __init__(self, contactor: Contactor) -> None:
        self._contactor = contactor

    def off(self) -> None:
        self._contactor.outputs_off()

    @property
    def closed(self) -> bool:
        return bool(self._contactor._output.closed)
