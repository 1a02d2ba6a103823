"""Mock pins, and a bench rig with its connectors that is torn down after each test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from cp_pi.config import AdcChip, ConnectorConfig
from cp_pi.hardware.parts import build_connector
from cp_pi.hardware.pilot import Adc
from cp_pi.hardware.rig import BenchRig

from .helpers import RIG, Bench, BenchMaker, connector


@pytest.fixture
def factory() -> Iterator[Any]:
    pins = MockFactory()
    yield pins
    pins.reset()


@pytest.fixture
async def make_bench(factory: Any) -> AsyncIterator[BenchMaker]:
    """Build the rig, let ``before`` set the world, then build the connectors (1-based)."""
    built: list[Bench] = []
    adcs: list[Adc] = []

    def make(*configs: ConnectorConfig, before: Callable[[BenchRig], None] | None = None) -> Bench:
        configs = configs or (connector(),)
        loop = asyncio.get_running_loop()
        bench = Bench(factory, BenchRig(factory, configs, RIG, loop=loop))
        built.append(bench)
        adc = Adc(
            AdcChip.MCP3008,
            [channel for config in configs for channel in config.adc_channels.values()],
            pin_factory=factory,
        )
        adcs.append(adc)
        if before is not None:
            before(bench.rig)
        for number, config in enumerate(configs, start=1):

            def changed(number: int = number) -> None:
                bench.changes.put_nowait((number, threading.get_ident()))

            hardware = build_connector(
                number, config, pin_factory=factory, loop=loop, rig=bench.rig, adc=adc
            )
            hardware.on_change = changed
            bench.connectors.append(hardware)
        return bench

    yield make
    for bench in built:
        for hardware in bench.connectors:
            hardware.close()
        bench.rig.close()
    for adc in adcs:
        adc.release()


@pytest.fixture
async def bench(make_bench: BenchMaker) -> Bench:
    return make_bench()
