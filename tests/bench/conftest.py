"""A booted station with its bench on a free port; its CSMS is the embedded one unless told."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cp_pi.app import Station, running_station
from cp_pi.config import BenchConfig
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, fast_settings

from .helpers import BenchClient, bench_client, bench_url

BenchStationFactory = Callable[..., AbstractAsyncContextManager[Station]]


@asynccontextmanager
async def booted_bench(
    data_dir: Path, csms_url: str | None = None, **changes: Any
) -> AsyncIterator[Station]:
    """Running and registered: BootNotification answered, connector 1's status reported."""
    changes.setdefault("bench", BenchConfig(port=0))
    settings = fast_settings(data_dir, csms_url, **changes)
    async with running_station(settings, bench=True, response_timeout=5) as station:
        central = station.csms
        if central is not None:
            await central.wait_for_call(CP_ID, "BootNotification")
            await central.wait_for_call(
                CP_ID, "StatusNotification", where=lambda p: p["connectorId"] == 1
            )
        yield station


@pytest.fixture
def make_bench_station(tmp_path: Path) -> BenchStationFactory:
    def make(csms_url: str | None = None, **changes: Any) -> AbstractAsyncContextManager[Station]:
        return booted_bench(tmp_path / "data", csms_url, **changes)

    return make


@pytest.fixture
async def station(make_bench_station: BenchStationFactory) -> AsyncIterator[Station]:
    async with make_bench_station() as running:
        yield running


@pytest.fixture
def central(station: Station) -> CentralSystem:
    """The embedded CSMS the station talks to."""
    assert station.csms is not None
    return station.csms


@pytest.fixture
def url(station: Station) -> str:
    return bench_url(station)


@pytest.fixture
async def client(url: str) -> AsyncIterator[BenchClient]:
    async with bench_client(url) as connected:
        await connected.first(lambda m: m["type"] == "state")
        yield connected
