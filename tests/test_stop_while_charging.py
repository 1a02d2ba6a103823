"""SIGTERM in the middle of a charge: every output off at once, then the truth about the
contactor. Its aux contact opens a moment after the output: that is no weld, and is not reported
as one; a contactor that really welded is reported."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from cp_pi.app import stopped_by_signals
from cp_pi.config import ConnectorConfig, ContactorConfig, LockConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault
from tests.conftest import FAST_LOCK, StationFactory, rig_of
from tests.ocpp16.test_unlock_connector import start_charging

CONNECTORS = [
    ConnectorConfig(lock=LockConfig(**FAST_LOCK), contactor=ContactorConfig(confirm_timeout=0.3))
]


async def stop_mid_charge(make_station: StationFactory, csms: CentralSystem, *, weld: bool) -> None:
    """Charge, then SIGTERM as systemd sends it, handled as `cp-pi run` handles it."""
    async with make_station(connectors=CONNECTORS) as station:
        await start_charging(station, csms)
        rig = rig_of(station)
        if weld:
            rig.set_fault(1, RigFault.CONTACTOR_WELDED)
        stop = asyncio.Event()
        with stopped_by_signals(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            await stop.wait()
        assert rig.fault(1) is (RigFault.CONTACTOR_WELDED if weld else RigFault.NONE)
        # the contactor output is already off, before the station shuts down
        assert not station.connectors[1].hardware.contactor_closed


async def test_a_stop_mid_charge_reports_no_weld_it_did_not_see(
    make_station: StationFactory, csms: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await stop_mid_charge(make_station, csms, weld=False)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_a_contactor_welded_at_stop_is_reported(
    make_station: StationFactory, csms: CentralSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await stop_mid_charge(make_station, csms, weld=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("contactor welded" in line for line in errors), errors
