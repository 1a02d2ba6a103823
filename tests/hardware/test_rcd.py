"""The residual-current monitor: a trip opens the contactor inside the trip pin's own event and
holds the connector tripped until the module is healthy and the cable is out; the self-test
trips the module through its test input."""

from __future__ import annotations

import logging

import pytest

from cp_pi.config import ConnectorConfig, RcdConfig
from cp_pi.core.reading import ConnectorReading
from cp_pi.core.status import ErrorCode, error_code_of
from cp_pi.hardware.rig import RigFault

from .helpers import FIRST, Bench, BenchMaker, connector
from .pins import pulses

TRIP, TEST = 26, 16


def with_rcd(*, test: bool = True) -> ConnectorConfig:
    rcd = RcdConfig(trip_pin=TRIP, test_pin=TEST if test else None, test_timeout=0.2)
    return connector().model_copy(update={"rcd": rcd})


@pytest.fixture
async def rcd_bench(make_bench: BenchMaker) -> Bench:
    return make_bench(with_rcd())


async def charging(bench: Bench) -> None:
    bench.rig.plug(1)
    while not bench.hw.cable_present:
        await bench.next_change()
    assert (await bench.hw.lock()).ok
    assert (await bench.hw.close_contactor()).ok


def drain(bench: Bench) -> None:
    while not bench.changes.empty():
        bench.changes.get_nowait()


async def test_a_trip_opens_the_contactor_within_the_trip_pins_event(rcd_bench: Bench) -> None:
    await charging(rcd_bench)
    drain(rcd_bench)

    rcd_bench.rig.set_fault(1, RigFault.RCD_TRIP)  # drives the trip pin: no await after

    assert not rcd_bench.pin(FIRST.contactor).state
    assert len(pulses(rcd_bench.pin(FIRST.contactor))) == 1  # one closing, ended by the trip
    assert rcd_bench.hw.tripped is ConnectorReading.RCD_TRIPPED
    assert rcd_bench.changes.empty()  # the loop has not even heard of the edge yet
    assert error_code_of(rcd_bench.hw.reading()) is ErrorCode.GROUND_FAILURE


async def test_the_contactor_never_closes_while_tripped(rcd_bench: Bench) -> None:
    rcd_bench.rig.plug(1)
    while not rcd_bench.hw.cable_present:
        await rcd_bench.next_change()
    assert (await rcd_bench.hw.lock()).ok
    rcd_bench.rig.set_fault(1, RigFault.RCD_TRIP)

    result = await rcd_bench.hw.close_contactor()

    assert not result.ok
    assert result.refused == "the residual current monitor is tripped"
    assert pulses(rcd_bench.pin(FIRST.contactor)) == []


async def test_a_trip_clears_only_once_healthy_and_the_cable_removed(rcd_bench: Bench) -> None:
    await charging(rcd_bench)
    rcd_bench.rig.set_fault(1, RigFault.RCD_TRIP)
    rcd_bench.hw.acknowledge_trip()
    assert (await rcd_bench.hw.open_contactor()).ok

    rcd_bench.rig.set_fault(1, RigFault.NONE)  # repaired, but the same vehicle still plugged
    assert rcd_bench.hw.reading() is ConnectorReading.RCD_TRIPPED
    assert not (await rcd_bench.hw.close_contactor()).ok

    rcd_bench.rig.unplug(1)
    while rcd_bench.hw.cable_present:
        await rcd_bench.next_change()
    assert rcd_bench.hw.reading() is ConnectorReading.GOOD_CONNECTION


async def test_the_self_test_trips_the_module_and_sees_it_recover(rcd_bench: Bench) -> None:
    assert await rcd_bench.hw.rcd_self_test()

    assert len(pulses(rcd_bench.pin(TEST))) == 1  # the test output, on once and off again
    assert not rcd_bench.pin(TEST).state
    assert rcd_bench.hw.reading() is ConnectorReading.GOOD_CONNECTION  # its trip latched nothing


async def test_a_failed_self_test_holds_the_connector_tripped(
    make_bench: BenchMaker, caplog: pytest.LogCaptureFixture
) -> None:
    bench = make_bench(with_rcd())
    bench.rig.set_fault(1, RigFault.RCD_TRIP)  # tripped before the test: it cannot pass

    with caplog.at_level(logging.ERROR, logger="cp_pi.hardware"):
        assert not await bench.hw.rcd_self_test()

    assert "residual current self-test failed" in caplog.text
    assert bench.hw.reading() is ConnectorReading.RCD_TRIPPED


async def test_a_module_slower_than_its_bound_fails_its_self_test(make_bench: BenchMaker) -> None:
    config = with_rcd()
    slow = config.model_copy(update={"rcd": config.rcd.model_copy(update={"test_timeout": 0.002})})
    bench = make_bench(slow)  # the rig's module trips contactor_delay (10 ms) after its test input
    bench.rig.plug(1)  # a session is about to start: the vehicle is connected
    while not bench.hw.cable_present:
        await bench.next_change()

    assert not await bench.hw.rcd_self_test()

    assert not bench.pin(TEST).state  # the test output is off again all the same
    assert bench.hw.reading() is ConnectorReading.RCD_TRIPPED  # until the cable is removed
    assert not (await bench.hw.close_contactor()).ok


async def test_rcd_none_builds_a_connector_without_a_monitor(make_bench: BenchMaker) -> None:
    bench = make_bench(connector().model_copy(update={"rcd": "none"}))

    assert bench.hw.parts.rcd is None
    assert bench.rig.rcd_tripped(1) is None
    assert TRIP not in bench.hw.pins.values()
