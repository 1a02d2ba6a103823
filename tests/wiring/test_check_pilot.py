"""`cp-pi check-wiring` reads the control pilot and the proximity pilot through the ADC with no
vehicle, and drives the pilot to state F and back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from cp_pi.config import AdcChip, ConnectorConfig
from cp_pi.hardware.parts import build_connector
from cp_pi.hardware.pilot import Adc
from cp_pi.hardware.rig import BenchRig
from cp_pi.wiring.pilot_check import pilot_checks
from cp_pi.wiring.pin_map import Header
from cp_pi.wiring.trial import Check, Verdict
from tests.conftest import fast_settings
from tests.hardware.helpers import RIG, connector
from tests.wiring.test_check import check

PILOT_PIN = 18


async def test_a_sound_pilot_reads_state_a_goes_to_f_and_back(tmp_path: Path) -> None:
    factory = MockFactory()
    try:
        run = await check(fast_settings(tmp_path / "data", None), pin_factory=factory)
        levels = [state.state for state in factory.pin(PILOT_PIN).states]
    finally:
        factory.reset()

    assert "connector 1: control pilot +12.0 V (state A)" in run.lines
    assert "connector 1: proximity pilot open" in run.lines
    for name in (
        "control pilot reads +12 V",
        "proximity pilot open",
        "control pilot drives -12 V",
        "control pilot back to +12 V",
    ):
        assert run.verdicts[name] == "pass", name
    # +12 V, then -12 V (state F) and +12 V again; -12 V once the outputs are off at the end.
    driven = levels[levels.index(1.0) :]
    assert driven[: driven.index(0.0) + 2][-2:] == [0.0, 1.0]
    assert levels[-1] == 0.0
    assert run.status == 0


@asynccontextmanager
async def board(wired: ConnectorConfig, configured: ConnectorConfig) -> AsyncIterator[Any]:
    """The rig wired as ``wired`` says, and the connector built as ``configured`` says: what a
    board whose wiring and configuration disagree is like."""
    factory = MockFactory()
    loop = asyncio.get_running_loop()
    rig = BenchRig(factory, [wired], RIG, loop=loop)
    adc = Adc(AdcChip.MCP3008, configured.adc_channels.values(), pin_factory=factory)
    hardware = build_connector(1, configured, pin_factory=factory, loop=loop, rig=rig, adc=adc)
    try:
        yield factory, rig, hardware
    finally:
        hardware.close()
        adc.release()
        rig.close()
        factory.reset()


async def checks_of(factory: Any, hardware: Any, config: ConnectorConfig) -> dict[str, Check]:
    found = await pilot_checks(hardware, config, where=Header(factory.board_info), say=print)
    return {check.name: check for check in found}


async def test_a_detector_on_another_channel_names_the_driver_and_the_channel() -> None:
    wired = connector(pilot=True)
    pilot = wired.pilot.model_copy(update={"high_channel": 6, "low_channel": 7})
    configured = wired.model_copy(update={"pilot": pilot})
    async with board(wired, configured) as (factory, _, hardware):
        checks = await checks_of(factory, hardware, configured)

    assert checks["control pilot reads +12 V"].verdict is Verdict.FAIL
    advice = checks["control pilot reads +12 V"].advice
    assert advice.startswith("the pilot reads -12.0 V (state F) with no vehicle, +12 V expected")
    assert "the driver stage fed by GPIO18 / pin 12" in advice
    assert "the high-level detector into ADC CH6" in advice
    assert "control pilot drives -12 V" not in checks  # not driven on a wrong reading
    assert checks["proximity pilot open"].verdict is Verdict.PASS


async def test_a_vehicle_in_the_socket_fails_both_reads() -> None:
    config = connector(pilot=True)
    async with board(config, config) as (factory, rig, hardware):
        moved = asyncio.Event()
        hardware.on_change = moved.set
        rig.plug(1, cable_rating=20)
        async with asyncio.timeout(2):
            while hardware.pilot_state != "B" or hardware.cable_rating_a != 20:
                moved.clear()
                await moved.wait()
        checks = await checks_of(factory, hardware, config)

    assert checks["control pilot reads +12 V"].verdict is Verdict.FAIL
    assert "+9.0 V (state B)" in checks["control pilot reads +12 V"].advice
    assert checks["proximity pilot open"].verdict is Verdict.FAIL
    assert re.match(
        r"PP reads 6[78]\d ohm with no plug in the socket: check the 1 kOhm pull-up to 3V3 and"
        r" the PP wire into ADC CH2",
        checks["proximity pilot open"].advice,
    )
