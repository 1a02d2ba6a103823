"""Picking the pin factory: a named one works or says what to install; mock pins only off a Pi."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from cp_pi.hardware.factory import HardwareUnavailable, make_pin_factory


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_mock_is_mock() -> None:
    assert isinstance(make_pin_factory("mock"), MockFactory)


def test_without_a_gpio_chip_mock_pins_are_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cp_pi.hardware"):
        factory = make_pin_factory(None, dev=tmp_path)

    assert isinstance(factory, MockFactory)
    assert "no GPIO chip found: using mock pins" in caplog.text


@pytest.mark.skipif(installed("lgpio"), reason="lgpio is installed here")
def test_a_gpio_chip_without_lgpio_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").touch()

    with pytest.raises(HardwareUnavailable, match=r"lgpio.*python3-lgpio"):
        make_pin_factory(None, dev=tmp_path)


@pytest.mark.skipif(installed("RPi"), reason="RPi.GPIO is installed here")
def test_a_missing_library_says_how_to_install_it() -> None:
    with pytest.raises(HardwareUnavailable, match=r"pip install RPi\.GPIO"):
        make_pin_factory("rpigpio")


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="may be a Raspberry Pi")
def test_a_factory_that_cannot_start_says_so() -> None:
    with pytest.raises(HardwareUnavailable, match=r"native.*cannot start"):
        make_pin_factory("native")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(HardwareUnavailable, match="lgpio, rpigpio, pigpio, native"):
        make_pin_factory("gpio")
