"""Hardware built from parts: one builder, and one inventory of pins that everything reads."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from cp_pi.config import (
    ConfigError,
    ConnectorConfig,
    LockKind,
    RcdConfig,
    Settings,
    connectors_on,
    load_settings,
)
from cp_pi.core.reading import ConnectorReading, LockOutcome
from cp_pi.hardware.inputs import PinReadError
from cp_pi.hardware.rig import RigFault
from cp_pi.wiring.check import check_wiring
from cp_pi.wiring.pin_map import Header, pin_map_lines, wires
from tests.conftest import StationFactory

from .helpers import RIG, SECOND, Bench, BenchMaker, connector

#: Every shape a connector's wiring takes: each lock kind, a push-push coil, no aux contact.
SHAPES = {
    "solenoid": connector(),
    "push-push": connector(push_push=True),
    "motor": connector(LockKind.MOTOR),
    "fixed cable": connector(LockKind.NONE),
    "no aux contact": connector(aux=False),
    "control pilot": connector(pilot=True),
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_the_parts_declare_the_pins_the_configuration_checks(
    make_bench: BenchMaker, shape: str
) -> None:
    config = SHAPES[shape]

    hardware = make_bench(config).hw

    assert hardware.pins == config.pins
    assert [part_pin for part in hardware.parts.all() for part_pin in part.pins.values()] == list(
        config.pins.values()
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_the_duplicate_check_covers_every_role_of_the_inventory(shape: str, tmp_path: Path) -> None:
    config = SHAPES[shape]
    twice = {"connectors": [config.model_dump()] * 2, "rig": RIG.model_dump()}

    with pytest.raises(ConfigError) as refused:
        load_settings(None, twice, environ={}, default_path=tmp_path / "absent.toml")

    assert refused.value.lines == [
        f"connectors[1].{role}: GPIO{pin} is already used by connectors[0].{role}"
        for role, pin in config.pins.items()
    ] + [
        f"connectors[1].{role}: ADC channel {channel} is already used by connectors[0].{role}"
        for role, channel in config.adc_channels.items()
    ]


@pytest.mark.parametrize("shape", SHAPES)
async def test_the_wiring_map_lists_the_pins_the_parts_claim(
    make_bench: BenchMaker, factory: Any, shape: str
) -> None:
    config = SHAPES[shape]
    hardware = make_bench(config).hw

    assert [wire.gpio for wire in wires(config)] == list(hardware.pins.values())
    assert len(pin_map_lines(config, Header(factory.board_info))) == len(hardware.pins)


async def test_the_station_and_the_self_test_build_the_same_parts(
    make_station: StationFactory, factory: Any, tmp_path: Path
) -> None:
    """``cp-pi run`` (and so the bench and the fleet, which run stations) and ``check-wiring``
    share one builder: the self-test prints the pins that the station's parts claim."""
    configs = connectors_on([connector(), connector(LockKind.MOTOR, pins=SECOND)], mock_pins=True)
    async with make_station(connectors=configs, rig=RIG) as station:
        claimed = [connector.hardware.pins for connector in station.connectors.values()]
    assert claimed == [config.pins for config in configs]
    settings = Settings(pin_factory="mock", data_dir=tmp_path, connectors=configs, rig=RIG)
    out = io.StringIO()

    await check_wiring(
        settings, assume_yes=False, fault=None, out=out, ask=lambda _: False, pin_factory=factory
    )

    where = Header(factory.board_info)
    for config in configs:
        assert "\n".join(pin_map_lines(config, where)) in out.getvalue()
        for pin in config.pins.values():
            assert where(pin) in out.getvalue()


async def test_an_unreadable_pin_raises_pin_read_error_and_reads_as_a_fault(
    make_bench: BenchMaker,
) -> None:
    bench: Bench = make_bench()
    bench.rig.set_fault(1, RigFault.FEEDBACK_UNREADABLE)
    lock = bench.hw.parts.lock
    assert lock is not None

    with pytest.raises(PinReadError, match=r"lock\.feedback_pin \(GPIO27\) unreadable"):
        _ = lock.feedback.position

    assert bench.hw.reading() is ConnectorReading.PIN_READ_ERROR
    result = await bench.hw.lock()
    assert (result.outcome, result.fault) == (LockOutcome.FAILED, ConnectorReading.PIN_READ_ERROR)


def test_a_connector_config_names_its_roles_by_their_keys() -> None:
    assert ConnectorConfig().on_pins(mock_pins=True).pins == {
        "proximity_pin": 17,
        "lock.lock_pin": 22,
        "lock.unlock_pin": 23,
        "lock.feedback_pin": 27,
        "contactor.pin": 24,
        "contactor.feedback_pin": 25,
        "rcd.trip_pin": 26,
        "rcd.test_pin": 16,
        "pilot.pwm_pin": 18,
    }


def test_real_pins_have_a_residual_current_monitor_only_where_one_is_configured() -> None:
    assert "rcd.trip_pin" not in ConnectorConfig().on_pins(mock_pins=False).pins
    assert ConnectorConfig(rcd="none").on_pins(mock_pins=True).rcd_module is None
    wired = ConnectorConfig(rcd=RcdConfig(test_pin=None)).on_pins(mock_pins=False)
    assert wired.pins["rcd.trip_pin"] == 26
    assert "rcd.test_pin" not in wired.pins
