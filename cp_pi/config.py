"""Configuration: built-in defaults < TOML file < ``CP_PI_*`` environment < command-line flags.

The default pin map is the one drawn in ``wiring.md``; change both together.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Hard ceiling for one actuator drive; the lock driver caps on-time at this whatever it is given.
MAX_DRIVE_TIME = 3.0


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a safety setting must never be ignored."""

    model_config = ConfigDict(extra="forbid")


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


class LockConfig(Strict):
    kind: LockKind = LockKind.SOLENOID
    lock_pin: int | None = 22
    unlock_pin: int | None = 23
    feedback_pin: int | None = 27
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


class ContactorConfig(Strict):
    pin: int = 24
    #: Auxiliary contact input; None when the contactor has none.
    feedback_pin: int | None = 25
    feedback_active: ActiveLevel = ActiveLevel.LOW
    #: Seconds to wait for the auxiliary contact to confirm a command before calling it a fault.
    confirm_timeout: float = Field(default=1.0, gt=0, le=5)


class ConnectorConfig(Strict):
    proximity_pin: int = 17
    #: Level of the proximity input while a plug is present (comparator output).
    proximity_active: ActiveLevel = ActiveLevel.HIGH
    lock: LockConfig = Field(default_factory=LockConfig)
    contactor: ContactorConfig = Field(default_factory=ContactorConfig)


class BenchConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8180, ge=0, le=65535)


class RigConfig(Strict):
    """The simulated world of mock mode."""

    #: Charging power of the simulated EV, in watts.
    power_w: float = Field(default=11000.0, ge=0)
    #: Seconds the simulated lock takes to travel; must be shorter than the drive time.
    lock_travel_time: float = Field(default=0.05, ge=0)
    #: Seconds the simulated auxiliary contact lags the contactor output.
    contactor_delay: float = Field(default=0.02, ge=0)


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "state" / "cp-pi"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CP_PI_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    charge_point_id: str = Field(default="cp-pi-001", pattern=r"^[A-Za-z0-9._:-]{1,48}$")
    #: Base URL of the central system; the charge point id is appended. None: embedded CSMS.
    csms_url: str | None = None
    #: gpiozero pin factory name: "lgpio", "rpigpio", "native", "mock"; None picks one.
    pin_factory: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    vendor: str = Field(default="cp-pi", max_length=20)
    model: str = Field(default="cp-pi", max_length=20)
    serial_number: str | None = Field(default=None, max_length=25)
    log_level: str = "INFO"
    connectors: list[ConnectorConfig] = Field(
        default_factory=lambda: [ConnectorConfig()], min_length=1
    )
    bench: BenchConfig = Field(default_factory=BenchConfig)
    rig: RigConfig = Field(default_factory=RigConfig)
