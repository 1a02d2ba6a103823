"""Connector configurations with timings short enough for a quick suite, and the bench."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cp_pi.config import (
    ConnectorConfig,
    ContactorConfig,
    LockConfig,
    LockKind,
    PilotConfig,
    PpConfig,
    RcdConfig,
    RigConfig,
)
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.rig import BenchRig

DRIVE = 0.05
PAUSE = 0.05
SETTLE = 0.01
RETRIES = 2
TRAVEL = 0.02
CONFIRM_TIMEOUT = 0.2
#: 1 kWh per second: energy is visible after a few milliseconds.
POWER_W = 3_600_000.0
RIG = RigConfig(power_w=POWER_W, lock_travel_time=TRAVEL, contactor_delay=0.01, ev_delay=0.02)


@dataclass(frozen=True)
class Pins:
    proximity: int
    lock: int
    unlock: int
    feedback: int
    contactor: int
    aux: int
    pilot: int
    #: The first of its three ADC channels: CP high, CP low, PP.
    channels: int
    #: The residual-current monitor; None: the one mock pins give by default (GPIO26, GPIO16).
    rcd: RcdConfig | None = None


#: The default pin map.
FIRST = Pins(
    proximity=17, lock=22, unlock=23, feedback=27, contactor=24, aux=25, pilot=18, channels=0
)
#: A second connector clear of every pin of the first one's default parts (the residual-current
#: monitor's GPIO26 and GPIO16, SPI0 for the pilot's ADC, the UART): its pilot on GPIO13 (PWM1).
SECOND = Pins(
    proximity=5,
    lock=20,
    unlock=21,
    feedback=6,
    contactor=12,
    aux=19,
    pilot=13,
    channels=3,
    rcd=RcdConfig(trip_pin=4, test_pin=7),
)


def connector(
    kind: LockKind = LockKind.SOLENOID,
    *,
    pins: Pins = FIRST,
    push_push: bool = False,
    aux: bool = True,
    pilot: bool = False,
    **lock: Any,
) -> ConnectorConfig:
    """A connector on ``pins`` with a fast lock of ``kind`` and, with ``pilot``, a
    control pilot and PP; ``lock`` overrides the lock's fields."""
    has_lock = kind is not LockKind.NONE
    lock_config = LockConfig(
        kind=kind,
        lock_pin=pins.lock if has_lock else None,
        unlock_pin=pins.unlock if has_lock and not push_push else None,
        feedback_pin=pins.feedback if has_lock else None,
        **({"drive_time": DRIVE, "pause": PAUSE, "settle_time": SETTLE, "retries": RETRIES} | lock),
    )
    return ConnectorConfig(
        proximity_pin=pins.proximity,
        lock=lock_config,
        contactor=ContactorConfig(
            pin=pins.contactor,
            feedback_pin=pins.aux if aux else None,
            confirm_timeout=CONFIRM_TIMEOUT,
        ),
        rcd=pins.rcd,
        pilot=(
            PilotConfig(
                pwm_pin=pins.pilot,
                high_channel=pins.channels,
                low_channel=pins.channels + 1,
                sample_idle=0.02,
                sample_active=0.002,
                debounce=2,
                ev_wait=0.5,
            )
            if pilot
            else None
        ),
        pp=PpConfig(channel=pins.channels + 2),
    )


@dataclass
class Bench:
    """The rig, the connectors in it, and every on_change call as (connector id, thread id)."""

    factory: Any
    rig: BenchRig
    connectors: list[ConnectorHardware] = field(default_factory=list)
    changes: asyncio.Queue[tuple[int, int]] = field(default_factory=asyncio.Queue)

    @property
    def hw(self) -> ConnectorHardware:
        """Connector 1."""
        return self.connectors[0]

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    async def next_change(self) -> tuple[int, int]:
        async with asyncio.timeout(1):
            return await self.changes.get()


BenchMaker = Callable[..., Bench]
