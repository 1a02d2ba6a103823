"""The last line of defence: every live output can be switched off from anywhere, at any time.

Python does not handle SIGTERM by default, so gpiozero's own clean-up never runs when systemd
stops the service, and the Raspberry Pi kernel keeps an output at its last level after the process
is gone. A coil left energised overheats; a contactor left closed keeps delivering energy. So each
output device registers here when it is created, with the pins it drives (``{role: BCM pin}``, as
its part declares them), and :func:`all_outputs_off` walks the registry.
The runner calls it from its SIGTERM handler; :mod:`atexit` calls it at interpreter exit. It is
registered after gpiozero's own exit hook, so it runs first (atexit is last-in, first-out) and
the outputs are low before gpiozero releases the pins.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from typing import Protocol

# Imported here, not lazily: gpiozero must register its exit hook before this module does.
from gpiozero import DigitalOutputDevice, Factory

logger = logging.getLogger("cp_pi.hardware")


class Output(Protocol):
    """What a registered output must offer: gpiozero's ``DigitalOutputDevice`` fits."""

    def off(self) -> None: ...

    @property
    def closed(self) -> bool: ...


# A plain dict, mutated only by item assignment/pop and read through a tuple copy: no lock to
# deadlock on if a signal arrives while it is being changed. Each output maps to its pins.
_live: dict[Output, Mapping[str, int]] = {}


def output_device(pin: int, *, pin_factory: Factory, role: str = "") -> DigitalOutputDevice:
    """An output that starts low and is registered, as ``role`` when it has one."""
    device = DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)
    register(device, {role: pin} if role else {})
    return device


def register(output: Output, pins: Mapping[str, int] | None = None) -> None:
    """Put ``output`` under the safety net until :func:`unregister`; ``pins`` name it in the log."""
    _live[output] = dict(pins or {})


def unregister(output: Output) -> None:
    _live.pop(output, None)


def all_outputs_off() -> None:
    """Switch every registered output off; synchronous, idempotent and safe in a signal handler.

    One output that fails to switch must not stop the others, so each failure is logged and the
    walk goes on; the backends raise unrelated exception types, hence the broad ``except``.
    """
    for output, pins in tuple(_live.items()):
        if output.closed:
            continue
        try:
            output.off()
        except Exception:
            named = ", ".join(f"{role} (GPIO{pin})" for role, pin in pins.items())
            logger.exception("could not switch off output %s", named or repr(output))


atexit.register(all_outputs_off)
