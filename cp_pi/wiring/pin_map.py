"""The pin map as an electrician reads it: what each wire does and where it lands on the header.

cp-pi speaks BCM numbers; the harness is built against physical header positions. The position
comes from gpiozero's own board data for the board in hand, not from a table of our own, so a
board with another layout is described as it really is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpiozero.pins.local import get_pi_revision
from gpiozero.pins.pi import PiBoardInfo

from cp_pi.config import (
    CONTACTOR,
    CONTACTOR_AUX,
    LOCK_DRIVE,
    LOCK_FEEDBACK,
    PILOT_PWM,
    PROXIMITY,
    RCD_TEST,
    RCD_TRIP,
    UNLOCK_DRIVE,
    ActiveLevel,
    ConnectorConfig,
    LockKind,
)
from cp_pi.core.reading import LockPosition, PinSnapshot


class Header:
    """Names a BCM pin the way the harness is checked: ``GPIO27 / pin 13``."""

    def __init__(self, board_info: Any) -> None:
        self._board = board_info

    def __call__(self, gpio: int) -> str:
        for _header, pin in self._board.find_pin(f"GPIO{gpio}"):
            return f"GPIO{gpio} / pin {pin.number}"
        return f"GPIO{gpio} / not on the header"


#: A Pi 4 B: its 40-pin header is the one of every Pi since the B+ (Zero, 3, 4, 5 alike).
_FORTY_PIN_BOARD = 0xC03111


def board_header() -> Header:
    """The header of the Pi this runs on, read from its revision code without opening a pin
    (the service may hold them); elsewhere, or on a board gpiozero does not know, the 40-pin
    header every current Pi shares."""
    try:
        board = PiBoardInfo.from_revision(get_pi_revision())
    except Exception:  # no /proc revision (not a Pi), or a revision unknown to gpiozero
        board = PiBoardInfo.from_revision(_FORTY_PIN_BOARD)
    return Header(board)


@dataclass(frozen=True)
class Wire:
    function: str
    gpio: int
    direction: str
    #: What the active level means, e.g. "low = engaged".
    active: str


def wires(config: ConnectorConfig) -> list[Wire]:
    """Every pin the connector uses, inputs and outputs, in the order of the wiring table.

    The pins are the connector's one inventory (:attr:`ConnectorConfig.pins`), the same the
    hardware parts claim; here each role gets its words.
    """
    lock = config.lock
    if lock.kind is LockKind.MOTOR:
        drives = ("lock motor IN1 (engage)", "lock motor IN2 (release)")
    elif lock.unlock_pin is None:
        drives = ("lock coil (push-push)", "")
    else:
        drives = ("lock coil", "unlock coil")
    contactor = config.contactor
    rcd = config.rcd_module
    tripped = rcd.trip_active if rcd is not None else ""
    words = {
        PROXIMITY: (
            "proximity (plug present)",
            "input",
            f"{config.proximity_active} = plug present",
        ),
        LOCK_DRIVE: (drives[0], "output", "high = drive"),
        UNLOCK_DRIVE: (drives[1], "output", "high = drive"),
        LOCK_FEEDBACK: ("lock feedback", "input", f"{lock.feedback_active} = engaged"),
        CONTACTOR: ("contactor", "output", "high = closed"),
        CONTACTOR_AUX: (
            "contactor aux contact",
            "input",
            f"{contactor.feedback_active} = closed",
        ),
        RCD_TRIP: ("residual current trip", "input", f"{tripped} = tripped"),
        RCD_TEST: ("residual current test", "output", "high = test"),
        PILOT_PWM: ("control pilot (1 kHz PWM)", "output", "high = +12 V, low = -12 V"),
    }
    return [Wire(words[role][0], pin, *words[role][1:]) for role, pin in config.pins.items()]


def pin_map_lines(config: ConnectorConfig, where: Header) -> list[str]:
    return [
        f"  {wire.function:<26}  {where(wire.gpio):<16}  {wire.direction:<6}  {wire.active}"
        for wire in wires(config)
    ]


def _level(active: ActiveLevel, is_active: bool) -> str:
    return "high" if (active is ActiveLevel.HIGH) == is_active else "low"


def input_lines(config: ConnectorConfig, snapshot: PinSnapshot, where: Header) -> list[str]:
    """Each input as its meaning and its level, so a multimeter can confirm either."""

    def line(name: str, meaning: str, gpio: int, active: ActiveLevel, is_active: bool) -> str:
        return f"  {name:<14}  {meaning:<12}  {where(gpio)} reads {_level(active, is_active)}"

    cable = snapshot.cable_present
    lines = [
        line(
            "cable",
            "plug present" if cable else "no plug",
            config.proximity_pin,
            config.proximity_active,
            cable,
        )
    ]
    lock = config.lock
    if snapshot.lock_feedback is not None and lock.feedback_pin is not None:
        engaged = snapshot.lock_feedback is LockPosition.ENGAGED
        lines.append(
            line(
                "lock feedback",
                snapshot.lock_feedback.value,
                lock.feedback_pin,
                lock.feedback_active,
                engaged,
            )
        )
    aux = snapshot.contactor_feedback_closed
    contactor = config.contactor
    if aux is not None and contactor.feedback_pin is not None:
        lines.append(
            line(
                "contactor aux",
                "closed" if aux else "open",
                contactor.feedback_pin,
                contactor.feedback_active,
                aux,
            )
        )
    rcd = config.rcd_module
    if rcd is not None:
        tripped = snapshot.rcd_tripped
        lines.append(
            line(
                "residual curr.",
                "tripped" if tripped else "healthy",
                rcd.trip_pin,
                rcd.trip_active,
                tripped,
            )
        )
    return lines
