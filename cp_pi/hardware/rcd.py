"""The residual-current monitor: a Type A RCD with 6 mA DC detection, or an RDC-DD module.

Its trip output is an input here, read like the others; a trip reaches the connector in the
edge's own handler (``on_edge``), which opens the contactor before the loop hears of it. Its
optional test input is an output here: driving it makes a healthy module trip, which is the
self-test a charge point runs before each session.
"""

from __future__ import annotations

import asyncio
import logging

from gpiozero import Factory

from cp_pi.config import RCD_TEST, RCD_TRIP, RcdConfig
from cp_pi.hardware import safety
from cp_pi.hardware.inputs import PinReadError, _DigitalInput

logger = logging.getLogger("cp_pi.hardware")


class ResidualCurrentMonitor(_DigitalInput):
    """The module's trip output (``rcd.trip_pin``) and, when wired, its test input."""

    def __init__(
        self,
        config: RcdConfig,
        *,
        pin_factory: Factory,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(
            RCD_TRIP, config.trip_pin, config.trip_active, pin_factory=pin_factory, loop=loop
        )
        self._timeout = config.test_timeout
        self._moved: asyncio.Event | None = None
        self._test = (
            None
            if config.test_pin is None
            else safety.output_device(config.test_pin, pin_factory=pin_factory, role=RCD_TEST)
        )
        self._test_pin = config.test_pin

    @property
    def pins(self) -> dict[str, int]:
        test = {} if self._test_pin is None else {RCD_TEST: self._test_pin}
        return super().pins | test

    @property
    def tripped(self) -> bool:
        """The module says current leaks to earth (or its wire is broken)."""
        return self._active

    @property
    def can_self_test(self) -> bool:
        return self._test is not None

    def _changed(self) -> None:
        if self._moved is not None:
            self._moved.set()
        super()._changed()

    async def self_test(self) -> str | None:
        """Trip the module through its test input, then let it recover: None when it did both
        within ``test_timeout`` each, else what went wrong. The test output is on for at most
        ``test_timeout``."""
        if self._test is None:
            return None
        try:
            if self.tripped:
                return "the module reads tripped before the test"
            try:
                self._test.on()
                if not await self._level(tripped=True):
                    return f"no trip within {self._timeout} s of driving its test input"
            finally:
                self._test.off()
            if not await self._level(tripped=False):
                return f"still tripped {self._timeout} s after its test input was released"
        except PinReadError as error:
            return str(error)
        return None

    async def _level(self, *, tripped: bool) -> bool:
        """Wait, edge by edge, for the trip input to read ``tripped``, up to the timeout."""
        deadline = asyncio.get_running_loop().time() + self._timeout
        while self.tripped != tripped:
            self._moved = asyncio.Event()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._moved.wait(), remaining)
            except TimeoutError:
                return self.tripped == tripped
            finally:
                self._moved = None
        return True

    def outputs_off(self) -> None:
        if self._test is not None:
            self._test.off()

    def release(self) -> None:
        if self._test is not None:
            self._test.off()
            safety.unregister(self._test)
            self._test.close()
        super().release()
