"""The pilot's configuration: a section or "none", and one line per mistake naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cp_pi.config import ConfigError, ConnectorConfig, load_settings


def problems(tmp_path: Path, *connectors: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, *connectors)
    return refused.value.lines


def load(tmp_path: Path, *connectors: dict[str, Any]) -> Any:
    return load_settings(
        None,
        {"connectors": list(connectors), "pin_factory": "mock"},
        environ={},
        default_path=tmp_path / "absent.toml",
    )


def test_none_switches_the_pilot_and_pp_off(tmp_path: Path) -> None:
    settings = load(tmp_path, {"pilot": "none", "pp": "none", "cable_rating": 20})
    connector = settings.connectors[0]
    assert connector.pilot is None
    assert connector.pp is None
    assert "pilot.pwm_pin" not in connector.pins
    assert connector.adc_channels == {}


def test_the_defaults_give_a_pilot_and_a_pp(tmp_path: Path) -> None:
    connector = load(tmp_path, {}).connectors[0]
    assert connector.pins["pilot.pwm_pin"] == 18
    assert connector.adc_channels == {
        "pilot.high_channel": 0,
        "pilot.low_channel": 1,
        "pp.channel": 2,
    }
    assert connector.max_current == 32


@pytest.mark.parametrize(
    ("connector", "line"),
    [
        ({"pilot": {"high_channel": 9}}, "connectors[0].pilot.high_channel: should be less than"),
        ({"pilot": {"low_channel": 0}}, "connectors[0].pilot.low_channel: channel 0 is the"),
        ({"proximity_pin": 8}, "connectors[0].proximity_pin: GPIO8 is the ADC's SPI pin"),
        ({"max_current": 100}, "connectors[0].max_current: should be less than or equal to 80"),
        ({"pilot": {"debounce": 0}}, "connectors[0].pilot.debounce: should be greater than"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(
    tmp_path: Path, connector: dict[str, Any], line: str
) -> None:
    [problem] = problems(tmp_path, connector)
    assert problem.startswith(line)


def test_a_second_connector_needs_its_own_channels(tmp_path: Path) -> None:
    second = ConnectorConfig(
        proximity_pin=5,
        lock={"lock_pin": 6, "unlock_pin": 12, "feedback_pin": 26},
        contactor={"pin": 16, "feedback_pin": 19},
        pilot={"pwm_pin": 13, "high_channel": 3, "low_channel": 1},
        pp={"channel": 5},
    ).model_dump()
    assert problems(tmp_path, {}, second) == [
        "connectors[1].pilot.low_channel: ADC channel 1 is already used by"
        " connectors[0].pilot.low_channel"
    ]
