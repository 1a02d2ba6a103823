"""The connector's digital inputs: proximity, lock feedback and the contactor's auxiliary contact.

All three have external pull resistors and a configured active level, so they are gpiozero
``DigitalInputDevice(pull_up=None, active_state=...)``. Their values are read live from the pin:
a cable already inserted at start-up fires no event but is still seen. Events arrive on the pin
driver's own thread (lgpio's), so they reach asyncio through :func:`call_on_loop`; a safety check
that must not wait for the loop runs first, in the edge's own handler (``on_edge``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVarTuple

from gpiozero import DigitalInputDevice, Factory

from cp_pi.config import ActiveLevel
from cp_pi.core.reading import LockPosition

Args = TypeVarTuple("Args")


def call_on_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[[*Args], object], *args: *Args
) -> None:
    """Run ``callback(*args)`` on ``loop`` soon, from whichever thread a pin event came.

    lgpio reports edges on a thread of its own, which must go through the loop's self-pipe
    (``call_soon_threadsafe``); mock pins report on the loop's thread, where the self-pipe would
    only cost an extra wake-up of the loop per edge.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.call_soon(callback, *args)
    elif not loop.is_closed():  # after interpreter exit there is nobody left to tell
        loop.call_soon_threadsafe(callback, *args)


class PinReadError(Exception):
    """An input pin could not be read: the pin driver raised (each backend its own type).

    Raised by the input parts alone, so that everything above them handles one error: an
    unreadable input is a verdict (``PIN_READ_ERROR``), never an unhandled exception.
    """


class _DigitalInput:
    """One input part: a pin with its role, and the handlers its owner attaches.

    ``on_edge`` runs on the pin driver's thread, before the loop hears of the edge;
    ``on_change`` runs on the loop afterwards. Both may be attached after construction, by the
    part (a contactor, a connector) that receives this one.
    """

    def __init__(
        self,
        role: str,
        pin: int,
        active: ActiveLevel,
        *,
        pin_factory: Factory,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._pins = {role: pin}
        self.on_change: Callable[[], object] | None = None
        self.on_edge: Callable[[], object] | None = None
        self._device = DigitalInputDevice(
            pin,
            pull_up=None,
            active_state=active is ActiveLevel.HIGH,
            pin_factory=pin_factory,
        )

        def changed() -> None:
            # ``on_edge`` runs here, on the pin driver's thread and before the loop hears of the
            # edge, so a safety reaction never waits behind work queued on the loop.
            try:
                if self.on_edge is not None:
                    self.on_edge()
            finally:
                call_on_loop(loop, self._changed)

        self._device.when_activated = changed
        self._device.when_deactivated = changed

    @property
    def pins(self) -> dict[str, int]:
        """``{role: BCM pin}``: the one pin this input reads."""
        return dict(self._pins)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def _active(self) -> bool:
        try:
            return bool(self._device.is_active)
        # The one place a backend's own error type is caught: lgpio.error, OSError, PinError...
        except Exception as error:
            ((role, pin),) = self._pins.items()
            raise PinReadError(f"{role} (GPIO{pin}) unreadable: {error}") from error

    def release(self) -> None:
        self._device.close()


class ProximitySensor(_DigitalInput):
    """The proximity pilot through a comparator: it tells "plug present", not the cable rating."""

    @property
    def cable_present(self) -> bool:
        return self._active


class LockFeedback(_DigitalInput):
    """The lock's feedback switch; wired so that a broken wire reads "not locked"."""

    @property
    def position(self) -> LockPosition:
        return LockPosition.ENGAGED if self._active else LockPosition.RELEASED


class AuxContact(_DigitalInput):
    """The contactor's auxiliary contact: the only witness of whether the main contacts opened."""

    @property
    def closed(self) -> bool:
        return self._active
