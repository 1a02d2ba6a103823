"""Fixtures shared by the whole suite: a real CSMS on loopback and a charge point on mock pins."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from cp_pi.app import Station, running_station
from cp_pi.config import ConnectorConfig, LockConfig, LockKind, RigConfig, Settings
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import BenchRig

# CI replays the same examples on every run, so that a red CI is about the change under test;
# local runs keep exploring new ones (and remember failures in .hypothesis/).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

CP_ID = "cp-test"

#: Lock timings short enough for a quick suite, in the proportions of real ones.
FAST_LOCK = {"drive_time": 0.05, "pause": 0.05, "settle_time": 0.01, "retries": 1}


def fast_settings(data_dir: Path, csms_url: str | None, **changes: Any) -> Settings:
    connectors = changes.pop("connectors", None) or [ConnectorConfig(lock=LockConfig(**FAST_LOCK))]
    rig = changes.pop("rig", None) or RigConfig(
        lock_travel_time=0.02, contactor_delay=0.01, ev_delay=0.02
    )
    return Settings(
        charge_point_id=CP_ID,
        csms_url=csms_url,
        pin_factory="mock",
        data_dir=data_dir,
        connectors=connectors,
        rig=rig,
        **changes,
    )


def fixed_cable() -> list[ConnectorConfig]:
    return [
        ConnectorConfig(
            lock=LockConfig(kind=LockKind.NONE, lock_pin=None, unlock_pin=None, feedback_pin=None)
        )
    ]


@pytest.fixture
async def csms() -> AsyncIterator[CentralSystem]:
    async with CentralSystem(host="127.0.0.1", port=0, heartbeat_interval=300) as central:
        yield central


StationFactory = Callable[..., AbstractAsyncContextManager[Station]]


@pytest.fixture
def make_station(tmp_path: Path, csms: CentralSystem) -> StationFactory:
    """Build a booted station against the test CSMS; keyword arguments change the settings."""

    def make(
        *, wait_for_boot: bool = True, response_timeout: float = 5, **changes: Any
    ) -> AbstractAsyncContextManager[Station]:
        settings = fast_settings(tmp_path / "data", csms.url, **changes)
        return booted(
            settings, csms, wait_for_boot=wait_for_boot, response_timeout=response_timeout
        )

    return make


class booted:
    def __init__(
        self,
        settings: Settings,
        csms: CentralSystem,
        *,
        wait_for_boot: bool,
        response_timeout: float,
    ) -> None:
        self._context = running_station(settings, response_timeout=response_timeout)
        self._csms = csms
        self._wait = wait_for_boot

    async def __aenter__(self) -> Station:
        station = await self._context.__aenter__()
        if not self._wait:
            return station
        start = len(self._csms.frames)
        await self._csms.wait_for_call(CP_ID, "BootNotification", after=start)
        await self._csms.wait_for_call(
            CP_ID, "StatusNotification", where=lambda p: p["connectorId"] == 1, after=start
        )
        return station

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(*exc)


@pytest.fixture
async def station(make_station: StationFactory) -> AsyncIterator[Station]:
    async with make_station() as booted_station:
        yield booted_station


def rig_of(station: Station) -> BenchRig:
    """The bench rig that plays a test station's hardware: every test station runs on mock pins."""
    assert station.rig is not None, "a test station runs on mock pins with the bench rig"
    return station.rig


@pytest.fixture
def rig(station: Station) -> BenchRig:
    """The rig of the ``station`` fixture: plugs cables, moves locks, injects faults."""
    return rig_of(station)
