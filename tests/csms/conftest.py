"""The central system on a free port, and the small charge point connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cp_pi.csms.server import CentralSystem

from .helpers import SmallChargePoint, connected


@pytest.fixture
async def csms() -> AsyncIterator[CentralSystem]:
    async with CentralSystem(host="127.0.0.1", port=0) as central:
        yield central


@pytest.fixture
async def cp(csms: CentralSystem) -> AsyncIterator[SmallChargePoint]:
    async with connected(csms) as charge_point:
        yield charge_point
