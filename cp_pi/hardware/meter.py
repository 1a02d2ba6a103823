"""Where the meter readings of a connector come from.

The controller needs a cumulative energy register in Wh (OCPP's meterStart/meterStop), and may
report more: a meter declares the OCPP measurands it really measures, each bare and on each phase
it measures it on ("Current.Import", "Current.Import.L1"), and the charge point accepts only
those in its MeterValues configuration keys. The Modbus meter and the simulated one also measure
Voltage, Current.Import and Power.Active.Import per phase. Hardware without an energy meter still
charges:
:class:`NoMeter` reads 0 Wh throughout, so transactions start and stop normally and report no
energy.

Reading a meter never waits: :meth:`EnergyMeter.read` gives the latest reading, which the meter
keeps up to date from its own polling task (:class:`PolledMeter`). Only :meth:`EnergyMeter.refresh`
goes to the meter, awaited, right before meterStart and meterStop, so that the register a
transaction begins and ends with is read at that moment. A meter on a bus does its I/O in that
awaited call (a thread or an async client), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Protocol

from cp_pi.core.metering import ENERGY_REGISTER, Reading, keys_of

logger = logging.getLogger("cp_pi.hardware")


class EnergyMeter(Protocol):
    @property
    def measurands(self) -> frozenset[str]:
        """The items a measurand list may name for this meter: each measurand it measures, bare
        and with each phase it measures it on (always the energy register)."""
        ...

    @property
    def ok(self) -> bool:
        """The last reading succeeded; False while the meter is silent or answers garbage."""
        ...

    @property
    def problem(self) -> str | None:
        """Why the last reading failed, in the meter's words; None while :attr:`ok`."""
        ...

    def on_health(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(ok)`` whenever :attr:`ok` changes."""
        ...

    def read_wh(self) -> int:
        """The cumulative energy register, in Wh, as last read; never decreases."""
        ...

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        """The latest readings of each of ``measurands`` that this meter measures, in order (a
        bare measurand measured only per phase gives one reading per phase)."""
        ...

    async def refresh(self) -> None:
        """Read the meter now; :meth:`read` gives this reading until the next one."""
        ...

    def close(self) -> None:
        """Stop polling."""
        ...


class NoMeter:
    """A charge point without a meter: the energy register reads 0 Wh, and nothing else is read."""

    @property
    def measurands(self) -> frozenset[str]:
        return frozenset({ENERGY_REGISTER})

    @property
    def ok(self) -> bool:
        return True

    @property
    def problem(self) -> str | None:
        return None

    def on_health(self, listener: Callable[[bool], None]) -> None:
        return None

    def read_wh(self) -> int:
        return 0

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        return [Reading(ENERGY_REGISTER, 0, "Wh") for m in measurands if m == ENERGY_REGISTER]

    async def refresh(self) -> None:
        return None

    def close(self) -> None:
        return None


class PolledMeter(ABC):
    """A meter that keeps its latest reading, polled every ``poll_interval`` seconds.

    A subclass says how one reading is taken (:meth:`_measure`); a reading that fails keeps the
    previous one and marks the meter not :attr:`ok` (logged once, when it fails and when it
    recovers), so meterStop can still use the last good register; whether a charge goes on is the
    connector's choice.
    """

    def __init__(self, readings: Iterable[Reading], poll_interval: float) -> None:
        """``readings``: one of each reading the meter takes (their values do not matter), from
        which it knows what it measures."""
        self._measurands = frozenset(keys_of(readings)) | {ENERGY_REGISTER}
        self._poll_interval = poll_interval
        self._latest = keys_of([Reading(ENERGY_REGISTER, 0, "Wh")])
        self._polling: asyncio.Task[None] | None = None
        self._ok = True
        self._problem: str | None = None
        self._health_listeners: list[Callable[[bool], None]] = []

    @property
    def measurands(self) -> frozenset[str]:
        return self._measurands

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def problem(self) -> str | None:
        return self._problem

    def on_health(self, listener: Callable[[bool], None]) -> None:
        self._health_listeners.append(listener)

    def start(self) -> None:
        """Begin polling on the running loop."""
        if self._polling is None:
            self._polling = asyncio.get_running_loop().create_task(self._poll(), name="meter")

    async def _poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._poll_interval)

    async def refresh(self) -> None:
        try:
            readings = await self._measure()
        except Exception as error:  # a meter's transport fails in its own way
            self._failed(error)
            return
        self._took(readings)

    def _failed(self, error: Exception) -> None:
        """A reading failed: the last good one stays; said once, not at every poll."""
        self._problem = str(error) or type(error).__name__
        if self._ok:
            logger.warning(
                "meter unreadable (%s): keeping its last good reading, %d Wh",
                self._problem,
                self.read_wh(),
            )
            self._set_ok(False)

    def _took(self, readings: Iterable[Reading]) -> None:
        self._keep(readings)
        self._problem = None
        if not self._ok:
            logger.info("meter answers again: %d Wh", self.read_wh())
            self._set_ok(True)

    def _set_ok(self, ok: bool) -> None:
        self._ok = ok
        for listener in self._health_listeners:
            listener(ok)

    def _keep(self, readings: Iterable[Reading]) -> None:
        self._latest = keys_of(readings)

    @abstractmethod
    async def _measure(self) -> list[Reading]:
        """One reading of every measurand; I/O goes to a thread or an async client."""

    def read_wh(self) -> int:
        return int(self._latest[ENERGY_REGISTER][0].value)

    def read(self, measurands: Iterable[str]) -> list[Reading]:
        return [reading for m in measurands for reading in self._latest.get(m, [])]

    def close(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None
