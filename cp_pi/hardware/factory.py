"""Choosing the gpiozero pin factory, loudly.

Left to itself gpiozero falls back from a missing lgpio to RPi.GPIO with only a warning, so a
broken install half-works. Here a named factory either starts or raises
:class:`HardwareUnavailable` with what to install; only when nothing is named and the machine
has no GPIO chip at all (a laptop, CI) do we fall back to mock pins, with a warning.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from pathlib import Path

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from cp_pi.errors import CpPiError

logger = logging.getLogger("cp_pi.hardware")

_HOW_TO_GET = {
    "lgpio": "install lgpio: pip install 'cp-pi[hardware]', or apt install python3-lgpio",
    "rpigpio": "install RPi.GPIO: pip install RPi.GPIO, or apt install python3-rpi.gpio",
    "pigpio": "install pigpio (pip install pigpio) and start the pigpiod daemon",
    "native": "the native factory needs a Raspberry Pi with /dev/gpiomem",
}


class HardwareUnavailable(CpPiError):
    """The configured GPIO access cannot work on this machine; the message says what to do."""


def gpio_chip_found(dev: Path = Path("/dev")) -> bool:
    """Whether this machine has a GPIO character device (a Pi, or a board like one)."""
    return any(dev.glob("gpiochip*"))


def resolves_to_mock(name: str | None, *, dev: Path = Path("/dev")) -> bool:
    """Whether :func:`make_pin_factory` gives mock pins for ``name``, without opening any pin."""
    return name == "mock" or (name is None and not gpio_chip_found(dev))


def make_pin_factory(name: str | None, *, dev: Path = Path("/dev")) -> Factory:
    """The factory called ``name``: "mock", "lgpio", "rpigpio", "pigpio" or "native".

    ``None`` picks lgpio (the only one that works on a Pi 5) when ``dev`` has a GPIO chip, else
    mock pins. ``dev`` exists so that the choice can be tested off a Pi.
    """
    if name is None:
        if not gpio_chip_found(dev):
            logger.warning("no GPIO chip found: using mock pins")
            return MockFactory()
        name = "lgpio"
    if name == "mock":
        return MockFactory()
    if name not in _HOW_TO_GET:
        known = ", ".join(["mock", *_HOW_TO_GET])
        raise HardwareUnavailable(f"unknown pin factory {name!r}: choose one of {known}")
    # gpiozero's own registry of factories, the one GPIOZERO_PIN_FACTORY uses.
    (entry,) = entry_points(group="gpiozero_pin_factories", name=name)
    try:
        factory_class = entry.load()
    except ImportError as error:
        raise HardwareUnavailable(
            f"pin factory {name!r} cannot be loaded ({error}): {_HOW_TO_GET[name]}"
        ) from error
    try:
        return factory_class()
    # Each backend fails in its own way (lgpio.error, RuntimeError, OSError, gpiozero's errors).
    except Exception as error:
        raise HardwareUnavailable(
            f"pin factory {name!r} cannot start ({error}): {_HOW_TO_GET[name]}"
        ) from error
