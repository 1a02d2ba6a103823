"""Configuration: built-in defaults < TOML file < ``CP_PI_*`` environment < command-line flags.

The default pin map is the one drawn in ``wiring.md``; change both together.

Every rule that protects the hardware lives on the models, so a ``Settings`` built in code is held
to the same rules as one read from a file. ``load_settings`` adds what only matters when reading
outside sources: stray ``CP_PI_*`` variables, the TOML file, and one plain line per problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from cp_pi.errors import UserError, report

#: Hard ceiling for one actuator drive; the lock driver caps on-time at this whatever it is given.
MAX_DRIVE_TIME = 3.0

#: Where the service looks for its file when no ``--config`` is given.
DEFAULT_CONFIG_PATH = Path("/etc/cp-pi/cp-pi.toml")

#: The central system waits about 10 s for the UnlockConnector answer; an unlock must finish in
#: 9 s so that opening the contactor and sending the answer fit in the remaining second.
UNLOCK_BUDGET = 9.0

ENV_PREFIX = "CP_PI_"
PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: What a charge point id may be: it is the last segment of the CSMS URL.
CHARGE_POINT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
#: The same rule as an installer reads it.
CHARGE_POINT_ID_RULE = "letters A-Z a-z, digits 0-9 and . _ : -, 1 to 48 of them"

#: GPIO numbers on the 40-pin header; GPIO0 and GPIO1 are the HAT ID EEPROM's I2C bus.
FIRST_PIN = 2
LAST_PIN = 27

#: Error type of a model-level rule; its context carries every (key, reason) it found.
_RULES = "config_rules"


class ConfigError(UserError):
    """Everything wrong with the configuration, so an installer fixes it in one round."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        #: One line per problem: ``<key>: <reason>``.
        self.lines = lines

    def report_lines(self) -> list[str]:
        """A line per problem, each naming its key."""
        return [f"config error: {line}" for line in self.lines]


def _reject(problems: list[tuple[str, str]]) -> None:
    """Raise every problem a model rule found as one error: pydantic keeps one per validator."""
    if problems:
        summary = "; ".join(f"{key}: {reason}" if key else reason for key, reason in problems)
        raise PydanticCustomError(_RULES, "{summary}", {"summary": summary, "problems": problems})


def _seconds(value: float) -> str:
    return f"{round(value, 3)} s"


def _on_header(pin: int) -> int:
    if not FIRST_PIN <= pin <= LAST_PIN:
        raise PydanticCustomError(
            "gpio_pin",
            "GPIO{pin} is not one of the header's usable pins GPIO2..GPIO27"
            " (GPIO0 and GPIO1 belong to the HAT ID EEPROM)",
            {"pin": pin},
        )
    return pin


def _none_word(value: object) -> object:
    """TOML has no null: ``"none"`` is how a file says a pin is not wired."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return value


T = TypeVar("T", bound=BaseModel)

#: A BCM GPIO number on the header.
GpioPin = Annotated[int, AfterValidator(_on_header)]
#: A pin that may be absent: None in code and JSON, ``"none"`` in TOML.
OptionalPin = Annotated[GpioPin | None, BeforeValidator(_none_word)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a safety setting must never be ignored."""

    model_config = ConfigDict(extra="forbid")


#: The tags of :data:`SectionOrNone`'s two forms: blank, so that :func:`_dotted` leaves them out
#: and a mistake is named by its key alone (``connectors[0].rcd.trip_pin``).
_SECTION, _WORD = "", " "


def _section_or_word(value: object) -> str:
    return _WORD if isinstance(value, str) else _SECTION


#: A part's section, or ``"none"`` for a part that is not fitted.
SectionOrNone = Annotated[
    Annotated[T, Tag(_SECTION)] | Annotated[Literal["none"], Tag(_WORD)],
    Discriminator(_section_or_word),
]


class LockKind(StrEnum):
    #: A fixed (tethered) cable: nothing to lock, UnlockConnector answers NotSupported.
    NONE = "none"
    #: Solenoid driven by pulses: two coils (lock_pin, unlock_pin) or one push-push coil.
    SOLENOID = "solenoid"
    #: DC motor lock behind an H-bridge: lock_pin drives one direction, unlock_pin the other.
    MOTOR = "motor"


class ActiveLevel(StrEnum):
    HIGH = "high"
    LOW = "low"


_LOCK_PINS = ("lock_pin", "unlock_pin", "feedback_pin")
_PIN_ROLES = {
    "lock_pin": "a pin that drives it locked",
    "unlock_pin": "a pin that drives it open",
    "feedback_pin": "a feedback pin that tells whether it is locked",
}
_NEEDED_PINS = {
    LockKind.MOTOR: ("lock_pin", "unlock_pin", "feedback_pin"),
    # Without unlock_pin the single coil is a push-push latch: each pulse toggles it.
    LockKind.SOLENOID: ("lock_pin", "feedback_pin"),
}


class LockConfig(Strict):
    kind: LockKind = LockKind.SOLENOID
    lock_pin: OptionalPin = 22
    unlock_pin: OptionalPin = 23
    feedback_pin: OptionalPin = 27
    #: Level of the feedback pin while the lock is engaged. The switch closes to GND when
    #: engaged, so a broken wire (pulled up) reads "not locked".
    feedback_active: ActiveLevel = ActiveLevel.LOW
    #: Seconds the actuator is driven per attempt.
    drive_time: float = Field(default=0.5, gt=0)
    #: Minimum seconds between two drives (coil duty cycle).
    pause: float = Field(default=2.0, ge=0)
    #: Extra attempts after the first one fails.
    retries: int = Field(default=2, ge=0, le=5)
    #: Seconds to wait after a drive before reading the feedback.
    settle_time: float = Field(default=0.2, ge=0)
    #: A lock fault with no transaction is retried by itself after this many seconds, the pause
    #: doubling after each failed retry up to ``heal_pause_max`` (never shorter than ``pause``).
    heal_pause: float = Field(default=5.0, gt=0)
    heal_pause_max: float = Field(default=300.0, gt=0)

    @field_validator("drive_time")
    @classmethod
    def _below_ceiling(cls, drive_time: float) -> float:
        if drive_time > MAX_DRIVE_TIME:
            raise PydanticCustomError(
                "drive_time_ceiling",
                "{drive_time} s is above the {ceiling} s ceiling"
                " (a longer drive burns the actuator)",
                {"drive_time": drive_time, "ceiling": MAX_DRIVE_TIME},
            )
        return drive_time

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Self:
        problems: list[tuple[str, str]] = []
        if self.kind is LockKind.NONE:
            for name in _LOCK_PINS:
                if name in self.model_fields_set and getattr(self, name) is not None:
                    problems.append(
                        (name, 'a fixed cable (kind "none") has no lock; remove this pin')
                    )
                # The defaults describe a solenoid; a fixed cable leaves those pins free.
                setattr(self, name, None)
        else:
            problems += [
                (name, f"a {self.kind} lock needs {_PIN_ROLES[name]}")
                for name in _NEEDED_PINS[self.kind]
                if getattr(self, name) is None
            ]
            problems += self._unlock_too_slow()
        if self.heal_pause_max < self.heal_pause:
            problems.append(("heal_pause_max", "must not be shorter than heal_pause"))
        _reject(problems)
        return self

    def _unlock_too_slow(self) -> list[tuple[str, str]]:
        attempts = self.retries + 1
        worst = attempts * (self.drive_time + self.settle_time) + attempts * self.pause
        if worst <= UNLOCK_BUDGET:
            return []
        arithmetic = (
            f"({self.retries} retries + 1) x ({_seconds(self.drive_time)} drive"
            f" + {_seconds(self.settle_time)} settle) + {attempts} x {_seconds(self.pause)} pause"
            f" = {_seconds(worst)}"
        )
        return [
            (
                "",
                f"an unlock can take {arithmetic}, more than the {_seconds(UNLOCK_BUDGET)} it has"
                " to answer UnlockConnector within 10 s; lower retries, drive_time, settle_time"
                " or pause",
            )
        ]


class ContactorConfig(Strict):
    """The contactor's output and, when it has one, its auxiliary contact."""

    pin: GpioPin = 24
    #: Auxiliary contact input; None when the contactor has none.
    feedback_pin: OptionalPin = 25
    feedback_active: ActiveLevel = ActiveLevel.LOW
    #: Seconds to wait for the auxiliary contact to confirm a command before calling it a fault.
    confirm_timeout: float = Field(default=1.0, gt=0, le=5)


class MeterKind(StrEnum):
    #: No energy meter: the register reads 0 Wh, transactions still start and stop.
    NONE = "none"
    #: The bench rig's vehicle, measured: mock pins only.
    SIMULATED = "simulated"
    #: An Eastron SDM meter on Modbus TCP (``host``) or RTU (``port`` is the serial device).
    MODBUS = "modbus"


class MeterModel(StrEnum):
    SDM630 = "sdm630"
    SDM120 = "sdm120"
    SDM230 = "sdm230"


class MeterFailure(StrEnum):
    """What a connector does while its meter is silent or answers garbage (PowerMeterFailure is
    reported either way, and meterStop is the last good register)."""

    #: Charging goes on, unmetered from the last good reading.
    CONTINUE = "continue"
    #: The running transaction ends (reason Other) and the connector is Faulted, taking no new
    #: transaction, until the meter answers sanely again: no energy that is not metered.
    STOP = "stop"


class MeterConfig(Strict):
    """Where a connector's energy readings come from."""

    #: None: "simulated" on mock pins (the rig's vehicle), "none" on real pins.
    kind: MeterKind | None = None
    #: Seconds between two readings the meter takes by itself; meterStart and meterStop take
    #: a fresh one whatever this says.
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    #: The Modbus meter's model, which names its register map.
    model: MeterModel | None = None
    #: Modbus TCP: the meter's (or gateway's) address; without it the meter is on RTU.
    host: str | None = None
    #: TCP port number (default 502), or the RTU serial device (e.g. "/dev/ttyUSB0").
    port: int | str | None = None
    baudrate: int = Field(default=9600, ge=1200, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    #: The meter's Modbus address (slave id).
    unit: int = Field(default=1, ge=1, le=247)
    #: Seconds one request may take before the meter counts as silent.
    timeout: float = Field(default=1.0, gt=0, le=10)
    on_failure: MeterFailure = MeterFailure.CONTINUE

    @model_validator(mode="after")
    def _modbus_is_addressed(self) -> Self:
        if self.kind is not MeterKind.MODBUS:
            return self
        problems: list[tuple[str, str]] = []
        if self.model is None:
            problems.append(("model", 'a Modbus meter needs one: "sdm630", "sdm120" or "sdm230"'))
        if self.host is not None:
            if self.port is None:
                self.port = 502
            elif not isinstance(self.port, int) or not 1 <= self.port <= 65535:
                problems.append(("port", "Modbus TCP needs a port number 1..65535"))
        elif not isinstance(self.port, str) or not self.port.startswith("/"):
            problems.append(
                ("port", 'Modbus RTU needs the serial device (e.g. "/dev/ttyUSB0"), or set host')
            )
        _reject(problems)
        return self

    def resolved(self, *, mock_pins: bool) -> MeterKind:
        """The kind in use on these pins."""
        if self.kind is not None:
            return self.kind
        return MeterKind.SIMULATED if mock_pins else MeterKind.NONE


class RcdConfig(Strict):
    """The residual-current monitor (a Type A RCD with 6 mA DC detection, or an RDC-DD module):
    its trip output, and the test input that makes it trip on purpose.

    A connector's ``rcd`` is this section, ``"none"`` (no module wired), or left out: then the
    module at these default pins on mock pins (the bench rig plays it), none on real pins, where
    a module that is not wired would read "tripped" for ever.
    """

    #: The module's trip output.
    trip_pin: GpioPin = 26
    #: Level of the trip input while tripped. The module's output holds the line low while
    #: healthy against a pull-up, so a broken wire reads "tripped".
    trip_active: ActiveLevel = ActiveLevel.HIGH
    #: The module's test input; None: no self-test before a session.
    test_pin: OptionalPin = 16
    #: Seconds the module has to trip on its test input, and to be healthy again after it.
    test_timeout: float = Field(default=0.5, gt=0, le=5)


#: The ADC's channels: MCP3008 (10 bits) or MCP3208 (12 bits), 8 single-ended inputs.
AdcChannel = Annotated[int, Field(ge=0, le=7)]


class AdcChip(StrEnum):
    MCP3008 = "mcp3008"
    MCP3208 = "mcp3208"


class AdcConfig(Strict):
    """The one SPI ADC of the station (SPI0, CE0), shared by every connector's pilot and PP."""

    chip: AdcChip = AdcChip.MCP3008


#: The ADC's SPI0 pins (CE0), BCM numbers: claimed whenever a connector has a pilot or a PP.
SPI_PINS = {"adc.clock": 11, "adc.mosi": 10, "adc.miso": 9, "adc.select": 8}


class PilotConfig(Strict):
    """The control pilot: its +-12 V wave from a PWM pin, its levels read back through the ADC.

    The thresholds are the standard's, in code (:mod:`cp_pi.core.pilot`); these keys say where
    the pilot is wired and how often it is looked at.
    """

    #: The PWM output that drives the pilot's +-12 V stage (1 kHz); GPIO18 is PWM0.
    pwm_pin: GpioPin = 18
    #: The ADC channel of the high-level (positive peak) detector.
    high_channel: AdcChannel = 0
    #: The ADC channel of the low-level (negative peak) detector: the diode check.
    low_channel: AdcChannel = 1
    #: The site ventilates: a vehicle in state D may charge.
    ventilation: bool = False
    #: Seconds between samples while no energy can flow (no wave, contactor open).
    sample_idle: float = Field(default=0.2, gt=0, le=1)
    #: Seconds between samples while energy can flow, or a change is being confirmed.
    sample_active: float = Field(default=0.005, gt=0, le=0.05)
    #: Consecutive agreeing samples before a new state counts.
    debounce: int = Field(default=3, ge=1, le=10)
    #: Seconds a start waits for the vehicle to ask for energy before it reports SuspendedEV.
    ev_wait: float = Field(default=3.0, ge=0, le=30)

    @model_validator(mode="after")
    def _two_channels(self) -> Self:
        if self.low_channel == self.high_channel:
            _reject([("low_channel", f"channel {self.low_channel} is the high_channel too")])
        return self


class PpConfig(Strict):
    """The proximity pilot's coding resistor, read through the ADC: the cable's rating."""

    channel: AdcChannel = 2


#: The roles of a connector's pins: each is the pin's key in the connector's configuration.
PROXIMITY = "proximity_pin"
LOCK_DRIVE = "lock.lock_pin"
UNLOCK_DRIVE = "lock.unlock_pin"
LOCK_FEEDBACK = "lock.feedback_pin"
CONTACTOR = "contactor.pin"
CONTACTOR_AUX = "contactor.feedback_pin"
RCD_TRIP = "rcd.trip_pin"
RCD_TEST = "rcd.test_pin"
PILOT_PWM = "pilot.pwm_pin"


class ConnectorConfig(Strict):
    proximity_pin: GpioPin = 17
    #: Level of the proximity input while a plug is present (comparator output).
    proximity_active: ActiveLevel = ActiveLevel.HIGH
    #: Seconds the proximity input must hold a new level before the cable counts as plugged
    #: or removed (a plug rattling in the socket must not end a charge).
    proximity_debounce: float = Field(default=0.05, ge=0, le=1)
    lock: LockConfig = Field(default_factory=LockConfig)
    contactor: ContactorConfig = Field(default_factory=ContactorConfig)
    meter: MeterConfig = Field(default_factory=MeterConfig)
    #: The residual-current monitor: a section, "none", or left out (see :class:`RcdConfig`).
    rcd: SectionOrNone[RcdConfig] | None = None
    #: The control pilot, or None ("none"): another board does it and the contactor follows
    #: the transaction alone, as without a pilot.
    pilot: Annotated[PilotConfig | None, BeforeValidator(_none_word)] = Field(
        default_factory=PilotConfig
    )
    #: The proximity pilot's ADC channel, or None ("none", a tethered cable: ``cable_rating``).
    #: Read by the pilot's sampler: without a pilot it is not read.
    pp: Annotated[PpConfig | None, BeforeValidator(_none_word)] = Field(default_factory=PpConfig)
    #: The tethered cable's rating in amperes, used when ``pp`` is "none"; None: no such term.
    cable_rating: float | None = Field(default=None, ge=6, le=80)
    #: The installation's limit in amperes: the most this connector ever offers.
    max_current: float = Field(default=32.0, ge=6, le=80)

    @property
    def rcd_module(self) -> RcdConfig | None:
        """The residual-current monitor in use, once :meth:`on_pins` gave the defaults."""
        return self.rcd if isinstance(self.rcd, RcdConfig) else None

    def on_pins(self, *, mock_pins: bool) -> ConnectorConfig:
        """This connector with the parts its pins give it by default: on mock pins, a
        residual-current monitor where none is configured or switched off."""
        if self.rcd is None and mock_pins:
            return self.model_copy(update={"rcd": RcdConfig()})
        return self

    @property
    def adc_channels(self) -> dict[str, int]:
        """``{role: ADC channel}`` of this connector's pilot and PP."""
        channels: dict[str, int] = {}
        if self.pilot is not None:
            channels["pilot.high_channel"] = self.pilot.high_channel
            channels["pilot.low_channel"] = self.pilot.low_channel
            if self.pp is not None:  # the pilot's sampler reads it
                channels["pp.channel"] = self.pp.channel
        return channels

    @property
    def pins(self) -> dict[str, int]:
        """Every pin this connector wires, ``{role: BCM pin}``, in the order of the wiring table.

        The one list of a connector's pins: the duplicate-pin check reads it here, and the
        hardware parts built from this configuration declare the same inventory.
        """
        lock, contactor, rcd = self.lock, self.contactor, self.rcd_module
        pins = {
            PROXIMITY: self.proximity_pin,
            LOCK_DRIVE: lock.lock_pin,
            UNLOCK_DRIVE: lock.unlock_pin,
            LOCK_FEEDBACK: lock.feedback_pin,
            CONTACTOR: contactor.pin,
            CONTACTOR_AUX: contactor.feedback_pin,
            RCD_TRIP: None if rcd is None else rcd.trip_pin,
            RCD_TEST: None if rcd is None else rcd.test_pin,
            PILOT_PWM: None if self.pilot is None else self.pilot.pwm_pin,
        }
        return {role: pin for role, pin in pins.items() if pin is not None}


#: A DNS name: labels of letters, digits and inner hyphens, joined by dots.
HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


class BenchConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8180, ge=0, le=65535)
    #: Names the bench answers to besides loopback ones (a DNS-rebinding page names its own).
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        checked = []
        for name in names:
            bare = name.strip().lower()
            if bare.startswith("[") and bare.endswith("]"):
                bare = bare[1:-1]
            if HOST_NAME.fullmatch(bare) is None and not _ip_address(bare):
                raise PydanticCustomError(
                    "host_name",
                    "'{name}' is not a host name: give the name alone, without scheme, port or"
                    " path, e.g. bench.example.lan or 192.168.1.20",
                    {"name": name},
                )
            checked.append(bare)
        return checked


def _ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class RigConfig(Strict):
    """The simulated world of mock mode."""

    #: Charging power of the simulated EV, in watts.
    power_w: float = Field(default=11000.0, ge=0)
    #: Seconds the simulated lock takes to travel; must be shorter than the drive time.
    lock_travel_time: float = Field(default=0.05, ge=0)
    #: Seconds the simulated auxiliary contact lags the contactor output.
    contactor_delay: float = Field(default=0.02, ge=0)
    #: Seconds the simulated vehicle takes to ask for energy (B -> C) once the pilot's wave runs.
    ev_delay: float = Field(default=0.5, ge=0, le=60)
    #: The most current the simulated vehicle draws, in amperes; it draws ``power_w`` at this
    #: current and proportionally less when less is offered.
    ev_max_current: float = Field(default=16.0, ge=6, le=80)


class SupplyConfig(Strict):
    """The mains supply the charge point draws from: how charging profiles in W become amps."""

    #: Phase-to-neutral voltage, in volts.
    voltage: float = Field(default=230.0, ge=100, le=400)
    #: Phases wired to the connectors (a charging period that names none uses this many).
    phases: Literal[1, 3] = 3


class LogConfig(Strict):
    """What the log tells beyond ``log_level``."""

    #: Every OCPP frame in and out, whole, one line each, secrets redacted: for following the
    #: exchange with a real central system. Off by default: a busy charger writes many lines.
    ocpp_frames: bool = False


def valid_authorization_key(key: str) -> bool:
    """OCPP's AuthorizationKey: 16 to 40 printable ASCII characters (a Basic auth password)."""
    return 16 <= len(key) <= 40 and key.isascii() and key.isprintable()


class SecurityConfig(Strict):
    """The link to the central system (OCPP 1.6 Security Whitepaper, profiles 1 to 3)."""

    #: OCPP AuthorizationKey: the HTTP Basic password (the user is the charge point id).
    #: The central system may replace it with ChangeConfiguration; its value wins from then on.
    authorization_key: SecretStr | None = None
    #: CA bundle that signs the central system's certificate (wss://); None: the system's CAs.
    ca_file: Path | None = None
    #: Client certificate and its key (profile 3), both or neither.
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @field_validator("authorization_key")
    @classmethod
    def _key_length(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not valid_authorization_key(key.get_secret_value()):
            raise PydanticCustomError(
                "authorization_key", "must be 16 to 40 printable characters (value not shown)"
            )
        return key

    @model_validator(mode="after")
    def _files(self) -> SecurityConfig:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise PydanticCustomError(
                "client_certificate",
                "client_cert_file and client_key_file go together: give both or neither",
            )
        for name in ("ca_file", "client_cert_file", "client_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise PydanticCustomError(
                    "missing_file",
                    "{name}: no such file: {path}",
                    {"name": name, "path": str(path)},
                )
        return self


# -- firmware management (UpdateFirmware, GetDiagnostics) ---------------------------------------


class FirmwareInstaller(StrEnum):
    #: A new virtualenv per version next to the running one, switched by a symlink, with
    #: rollback (systemd/install.sh lays it out).
    PYTHON = "python"
    #: The downloaded file handed to ``firmware.command`` (an image updater such as RAUC).
    COMMAND = "command"


class FirmwareConfig(Strict):
    """How UpdateFirmware installs what it downloaded."""

    installer: FirmwareInstaller = FirmwareInstaller.PYTHON
    #: For ``installer = "command"``: the command line; the downloaded file's path is appended.
    #: Its exit status 0 means Installed, anything else InstallationFailed.
    command: str | None = None
    #: The side-by-side layout: ``versions/<version>/`` (a virtualenv each), ``current`` (a
    #: symlink to the running one) and ``launch`` (the start-up check that rolls back).
    root: Path = Path("/opt/cp-pi")
    #: Seconds a new version has to reach the central system before it is rolled back.
    confirm_timeout: float = Field(default=300.0, gt=0)
    #: Extra arguments for ``pip install`` of a new version (e.g. a local wheel house).
    pip_args: list[str] = Field(default_factory=list)
    #: Seconds without progress before a download or an upload is given up (then retried).
    transfer_timeout: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _command_given(self) -> FirmwareConfig:
        if self.installer is FirmwareInstaller.COMMAND and not (self.command or "").strip():
            raise PydanticCustomError(
                "firmware_command", 'installer = "command" needs firmware.command'
            )
        return self


class DiagnosticsConfig(Strict):
    """What GetDiagnostics can upload: cp-pi's own log file and its recent OCPP frames."""

    #: The log file in the data directory (``cp-pi.log``) rotates at this size...
    log_file_bytes: int = Field(default=1_000_000, ge=10_000)
    #: ...keeping this many older files beside it.
    log_file_backups: int = Field(default=3, ge=1, le=20)
    #: The newest OCPP frames kept in memory for the archive.
    frames: int = Field(default=300, ge=0, le=10_000)


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "state" / "cp-pi"


def _id_problem(charge_point_id: str) -> str:
    """What is wrong with an id ``CHARGE_POINT_ID`` refuses, in words."""
    for character in charge_point_id:
        if CHARGE_POINT_ID.fullmatch(character) is None:
            return f"{character!r} is not allowed"
    if not charge_point_id:
        return "empty"
    return f"{len(charge_point_id)} characters is too many"


def _pins_in_use(connectors: list[ConnectorConfig]) -> Iterator[tuple[str, int]]:
    for index, connector in enumerate(connectors):
        yield from ((f"connectors[{index}].{role}", pin) for role, pin in connector.pins.items())


def _shared_pins(connectors: list[ConnectorConfig]) -> list[tuple[str, str]]:
    first_user: dict[int, str] = {}
    problems = []
    for key, pin in _pins_in_use(connectors):
        if pin in first_user:
            problems.append((key, f"GPIO{pin} is already used by {first_user[pin]}"))
        else:
            first_user[pin] = key
    return problems


def _adc_fits(connectors: list[ConnectorConfig]) -> list[tuple[str, str]]:
    """The connectors share one ADC: each channel once, and its SPI pins for nobody else."""
    if not any(connector.adc_channels for connector in connectors):
        return []
    problems = []
    spi = {pin: role for role, pin in SPI_PINS.items()}
    first_user: dict[int, str] = {}
    for index, connector in enumerate(connectors):
        for role, pin in connector.pins.items():
            if pin in spi:
                problems.append(
                    (f"connectors[{index}].{role}", f"GPIO{pin} is the ADC's SPI pin {spi[pin]}")
                )
        for role, channel in connector.adc_channels.items():
            key = f"connectors[{index}].{role}"
            if channel in first_user:
                problems.append(
                    (key, f"ADC channel {channel} is already used by {first_user[channel]}")
                )
            else:
                first_user[channel] = key
    return problems


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    charge_point_id: str = "cp-pi-001"
    #: Base URL of the central system; the charge point id is appended. None: embedded CSMS.
    csms_url: str | None = None
    #: gpiozero pin factory name: "lgpio", "rpigpio", "pigpio", "native", "mock"; None picks one.
    pin_factory: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    vendor: str = Field(default="cp-pi", max_length=20)
    model: str = Field(default="cp-pi", max_length=20)
    serial_number: str | None = Field(default=None, max_length=25)
    log_level: str = "INFO"
    #: Requests from the central system handled at once; beyond it the link is not read further.
    max_requests_in_flight: int = Field(default=4, ge=1, le=16)
    connectors: list[ConnectorConfig] = Field(
        default_factory=lambda: [ConnectorConfig()], min_length=1
    )
    bench: BenchConfig = Field(default_factory=BenchConfig)
    rig: RigConfig = Field(default_factory=RigConfig)
    adc: AdcConfig = Field(default_factory=AdcConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    firmware: FirmwareConfig = Field(default_factory=FirmwareConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    supply: SupplyConfig = Field(default_factory=SupplyConfig)

    @field_validator("charge_point_id")
    @classmethod
    def _usable_id(cls, charge_point_id: str) -> str:
        # By hand rather than Field(pattern=...): that compiles the pattern with pydantic's Rust
        # regex engine, whose code then stays resident (about 0.3 MiB) for this one field; and
        # an installer is told which character is wrong, not shown a regular expression.
        # fullmatch, as Python's "$" also matches before a "\n".
        if CHARGE_POINT_ID.fullmatch(charge_point_id) is None:
            raise PydanticCustomError(
                "charge_point_id",
                "{problem}: use {rule}",
                {"problem": _id_problem(charge_point_id), "rule": CHARGE_POINT_ID_RULE},
            )
        return charge_point_id

    @field_validator("csms_url")
    @classmethod
    def _websocket_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("ws", "wss") and bool(parts.hostname)
            parts.port  # noqa: B018 - parsing the port is what rejects "host:99999"
        except ValueError:
            usable = False
        if not usable:
            raise PydanticCustomError(
                "csms_url",
                "'{url}' is not a central system address: it must start with ws:// or wss://"
                " and name a host, e.g. ws://csms.example.com:9000/ocpp",
                {"url": url},
            )
        return url

    @field_validator("pin_factory")
    @classmethod
    def _known_pin_factory(cls, name: str | None) -> str | None:
        if name is None:
            return None
        if name.lower() not in PIN_FACTORIES:
            raise PydanticCustomError(
                "pin_factory",
                "'{name}' is not a pin factory; use one of {choices}",
                {"name": name, "choices": ", ".join(PIN_FACTORIES)},
            )
        return name.lower()

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, level: str) -> str:
        if level.upper() not in LOG_LEVELS:
            raise PydanticCustomError(
                "log_level",
                "'{level}' is not a log level; use one of {choices}",
                {"level": level, "choices": ", ".join(LOG_LEVELS)},
            )
        return level.upper()

    @model_validator(mode="after")
    def _connectors_fit_together(self) -> Self:
        problems = _shared_pins(self.connectors) + _adc_fits(self.connectors)
        for index, connector in enumerate(self.connectors):
            lock = connector.lock
            if lock.kind is not LockKind.NONE and self.rig.lock_travel_time >= lock.drive_time:
                problems.append(
                    (
                        "rig.lock_travel_time",
                        f"{_seconds(self.rig.lock_travel_time)} is not shorter than"
                        f" connectors[{index}].lock.drive_time ({_seconds(lock.drive_time)}):"
                        " the simulated lock would never finish moving",
                    )
                )
        _reject(problems)
        return self


def _names_a_setting(model: type[BaseModel], path: list[str]) -> bool:
    head, *rest = path
    field = model.model_fields.get(head)
    if field is None:
        return False
    if not rest:
        return True
    nested = field.annotation
    return (
        isinstance(nested, type)
        and issubclass(nested, BaseModel)
        and _names_a_setting(nested, rest)
    )


def _split_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Our variables that name a setting, and a line for each that does not.

    pydantic-settings silently ignores prefixed variables that match no field, so a misspelt
    ``CP_PI_CSMS_URL`` would leave the charge point talking to the wrong central system.
    """
    known: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if _names_a_setting(Settings, path):
            known[name] = value
        else:
            unknown.append(f"{'.'.join(path)}: unknown setting (environment variable {name})")
    return known, unknown


class _EnvironSource(EnvSettingsSource):
    """The stock environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as error:
            # The stock message names the source class, not the variable an installer set.
            variable = f"{ENV_PREFIX}{field_name.upper()}"
            raise ConfigError(
                [f"{field_name}: not valid JSON ({error}) (environment variable {variable})"]
            ) from error


_TOML_POSITION = re.compile(r"^(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _toml_source(path: Path) -> TomlConfigSettingsSource:
    if not path.exists():
        raise ConfigError([f"{path}: no such file"])
    if not path.is_file():
        # TomlConfigSettingsSource would skip it silently.
        raise ConfigError([f"{path}: not a file"])
    try:
        return TomlConfigSettingsSource(Settings, toml_file=path)
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from error
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: not UTF-8 text (byte {error.start})"]) from error
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's TOMLDecodeError carries the position only inside its message.
        found = _TOML_POSITION.match(str(error))
        if found is None:
            raise ConfigError([f"{path}: {error}"]) from error
        where = f"{path}, line {found['line']}, column {found['column']}"
        raise ConfigError([f"{where}: {found['reason']}"]) from error


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if part in (_SECTION, _WORD):  # a tag of SectionOrNone, not a key
            continue
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else part
    return key


def _error_lines(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors():
        key = _dotted(problem["loc"])
        if problem["type"] == _RULES:
            for inner, reason in problem["ctx"]["problems"]:
                lines.append(f"{'.'.join(part for part in (key, inner) if part)}: {reason}")
        elif problem["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown setting")
        else:
            lines.append(f"{key}: {problem['msg'].removeprefix('Input ')}")
    return lines


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    default_path: Path = DEFAULT_CONFIG_PATH,
) -> Settings:
    """Merge defaults, the TOML file, ``CP_PI_*`` variables and ``overrides`` (highest wins).

    ``overrides`` is nested like the file and deep-merged, so ``{"bench": {"port": 9001}}``
    keeps the file's ``bench.host``. Raises ConfigError with every problem found.
    """
    known, problems = _split_environment(os.environ if environ is None else environ)
    sources: list[PydanticBaseSettingsSource] = [
        InitSettingsSource(Settings, init_kwargs=dict(overrides or {})),
        _EnvironSource(Settings, known),
    ]
    path = config_path if config_path is not None or not default_path.exists() else default_path
    try:
        if path is not None:
            sources.append(_toml_source(path))
        # settings_customise_sources is a class method and cannot be handed a per-call file and
        # environment; _build_sources takes the same source objects, highest priority first,
        # and merges them with pydantic-settings' own deep update. mypy derives __init__ from
        # the fields (dataclass_transform) and so does not see BaseSettings' own arguments.
        settings = Settings(_build_sources=(tuple(sources), {}))  # type: ignore[call-arg]
    except ConfigError as error:
        raise ConfigError(problems + error.lines) from None
    except ValidationError as error:
        raise ConfigError(problems + _error_lines(error)) from None
    if problems:
        raise ConfigError(problems)
    return settings


def check_runnable(settings: Settings, *, mock_pins: bool) -> None:
    """The rules that depend on the pins a valid configuration runs on; ConfigError if broken.

    ``cp-pi run`` and ``cp-pi check-config`` both apply them, so the check refuses exactly what
    the service would. ``mock_pins``: the pin factory resolves to mock pins on this machine.
    """
    if settings.csms_url is None and not mock_pins:
        raise ConfigError(
            [
                "csms_url: required on real pins (the embedded central system runs on mock pins"
                " only); set it to the central system's ws:// or wss:// address"
            ]
        )
    if not mock_pins:
        problems = [
            f"connectors[{index}].meter.kind: the simulated meter measures the bench rig's"
            ' vehicle, on mock pins only; use "none" until a real meter is wired'
            for index, connector in enumerate(settings.connectors)
            if connector.meter.kind is MeterKind.SIMULATED
        ]
        if problems:
            raise ConfigError(problems)
    connectors_on(settings.connectors, mock_pins=mock_pins)


def connectors_on(connectors: list[ConnectorConfig], *, mock_pins: bool) -> list[ConnectorConfig]:
    """Every connector with the parts these pins give it by default (:meth:`ConnectorConfig.
    on_pins`); ConfigError when a default part lands on a pin another part already uses."""
    resolved = [connector.on_pins(mock_pins=mock_pins) for connector in connectors]
    problems = [
        f"{key}: {reason} (the residual-current monitor mock pins give by default: give this"
        ' connector its own rcd pins, or rcd = "none")'
        for key, reason in _shared_pins(resolved)
    ]
    if problems:
        raise ConfigError(problems)
    return resolved


def load_settings_or_exit(
    config_path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """``load_settings`` for the command line: an installer gets the problems, not a traceback."""
    try:
        return load_settings(config_path, overrides)
    except ConfigError as error:
        exit_with(error)


def exit_with(error: ConfigError) -> NoReturn:
    """Print each problem on its own line, as the command line does, and exit with status 2."""
    raise SystemExit(report(error))
