"""Configuration as an installer meets it: a TOML file, CP_PI_* variables, flags, and the errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cp_pi.config import (
    ConfigError,
    LockKind,
    MeterKind,
    RcdConfig,
    Settings,
    check_runnable,
    connectors_on,
    load_settings,
    load_settings_or_exit,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "cp-pi.example.toml"


@dataclass
class Charger:
    """The configuration of one charger: its TOML file, its environment, no default file."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    file: Path | None = None

    def write(self, toml: str) -> Path:
        self.file = self.home / "cp-pi.toml"
        self.file.write_text(textwrap.dedent(toml))
        return self.file

    def load(self, overrides: dict[str, Any] | None = None) -> Settings:
        return load_settings(
            self.file, overrides, environ=self.env, default_path=self.home / "absent.toml"
        )

    def problems(self, overrides: dict[str, Any] | None = None) -> list[str]:
        with pytest.raises(ConfigError) as refused:
            self.load(overrides)
        return refused.value.lines


@pytest.fixture
def charger(tmp_path: Path) -> Charger:
    return Charger(tmp_path)


def defaults() -> dict[str, Any]:
    # model_construct fills in the defaults without reading the environment.
    return Settings.model_construct().model_dump()


def assert_one_problem(lines: list[str], key: str, reason: str) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{key}: "), lines[0]
    assert reason in lines[0]


def environment_without_ours() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("CP_PI_")}


# Sources and precedence


def test_without_file_or_environment_the_defaults_apply(charger: Charger) -> None:
    settings = charger.load()

    assert settings.model_dump() == defaults()
    connector = settings.connectors[0]
    assert connector.proximity_pin == 17
    assert (connector.lock.lock_pin, connector.lock.unlock_pin) == (22, 23)
    assert connector.lock.feedback_pin == 27
    assert (connector.contactor.pin, connector.contactor.feedback_pin) == (24, 25)


def test_the_default_file_is_read_when_it_exists(tmp_path: Path) -> None:
    default_file = tmp_path / "cp-pi.toml"
    default_file.write_text('charge_point_id = "depot-7"\n')

    settings = load_settings(environ={}, default_path=default_file)

    assert settings.charge_point_id == "depot-7"


def test_a_given_file_that_does_not_exist_is_an_error(charger: Charger) -> None:
    charger.file = charger.home / "typo.toml"

    assert charger.problems() == [f"{charger.home / 'typo.toml'}: no such file"]


def test_the_file_overrides_defaults_and_keeps_the_rest_of_a_table(charger: Charger) -> None:
    charger.write(
        """
        csms_url = "wss://csms.example.com/ocpp"
        [bench]
        host = "0.0.0.0"
        """
    )

    settings = charger.load()

    assert settings.csms_url == "wss://csms.example.com/ocpp"
    assert (settings.bench.host, settings.bench.port) == ("0.0.0.0", 8180)


def test_the_environment_overrides_the_file(charger: Charger) -> None:
    charger.write('charge_point_id = "from-file"\n[bench]\nport = 8000\n')
    charger.env = {"CP_PI_CHARGE_POINT_ID": "from-env", "CP_PI_BENCH__PORT": "9000"}

    settings = charger.load()

    assert (settings.charge_point_id, settings.bench.port) == ("from-env", 9000)


def test_connectors_come_from_the_environment_as_json(charger: Charger) -> None:
    charger.env = {"CP_PI_CONNECTORS": '[{"proximity_pin": 5, "lock": {"kind": "none"}}]'}

    connector = charger.load().connectors[0]

    assert connector.proximity_pin == 5
    assert connector.lock.kind is LockKind.NONE


def test_flags_beat_the_environment_and_keep_the_files_other_keys(charger: Charger) -> None:
    charger.write('[bench]\nhost = "0.0.0.0"\nport = 8000\n')
    charger.env = {"CP_PI_BENCH__PORT": "9000", "CP_PI_PIN_FACTORY": "lgpio"}

    settings = charger.load({"bench": {"port": 9001}, "pin_factory": "mock"})

    assert (settings.bench.host, settings.bench.port) == ("0.0.0.0", 9001)
    assert settings.pin_factory == "mock"


def test_the_example_file_holds_the_defaults(charger: Charger) -> None:
    charger.file = EXAMPLE

    assert charger.load().model_dump() == defaults()


# Lock kinds that load


def test_a_solenoid_without_unlock_pin_is_a_push_push_latch(charger: Charger) -> None:
    charger.write('[[connectors]]\n[connectors.lock]\nunlock_pin = "none"\n')

    lock = charger.load().connectors[0].lock

    assert lock.unlock_pin is None
    assert (lock.lock_pin, lock.feedback_pin) == (22, 27)


def test_a_fixed_cable_frees_the_default_lock_pins(charger: Charger) -> None:
    charger.write(
        """
        [[connectors]]
        [connectors.lock]
        kind = "none"
        [connectors.contactor]
        pin = 22
        """
    )

    connector = charger.load().connectors[0]

    assert (connector.lock.lock_pin, connector.lock.unlock_pin) == (None, None)
    assert connector.lock.feedback_pin is None
    assert connector.contactor.pin == 22


# One line per problem, naming the key


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        pytest.param('charge_point_idd = "x"', "charge_point_idd", "unknown setting", id="typo"),
        pytest.param(
            "[[connectors]]\n[connectors.lock]\ndrive_tim = 1.0",
            "connectors[0].lock.drive_tim",
            "unknown setting",
            id="nested-typo",
        ),
        pytest.param(
            "[[connectors]]\nproximity_pin = 1",
            "connectors[0].proximity_pin",
            "GPIO1 is not one of the header's usable pins GPIO2..GPIO27",
            id="pin-below-header",
        ),
        pytest.param(
            "[[connectors]]\n[connectors.contactor]\npin = 28",
            "connectors[0].contactor.pin",
            "GPIO28 is not one of",
            id="pin-above-header",
        ),
        pytest.param(
            "[[connectors]]\n[connectors.contactor]\npin = 22",
            "connectors[0].contactor.pin",
            "GPIO22 is already used by connectors[0].lock.lock_pin",
            id="pin-twice",
        ),
        pytest.param(
            "[[connectors]]\n[connectors.lock]\ndrive_time = 5.0",
            "connectors[0].lock.drive_time",
            "5.0 s is above the 3.0 s ceiling",
            id="drive-time-ceiling",
        ),
        pytest.param(
            '[[connectors]]\n[connectors.lock]\nkind = "motor"\nunlock_pin = "none"',
            "connectors[0].lock.unlock_pin",
            "a motor lock needs a pin that drives it open",
            id="motor-without-unlock-pin",
        ),
        pytest.param(
            '[[connectors]]\n[connectors.lock]\nfeedback_pin = "none"',
            "connectors[0].lock.feedback_pin",
            "a solenoid lock needs a feedback pin",
            id="solenoid-without-feedback",
        ),
        pytest.param(
            '[[connectors]]\n[connectors.lock]\nkind = "none"\nlock_pin = 22',
            "connectors[0].lock.lock_pin",
            'a fixed cable (kind "none") has no lock',
            id="fixed-cable-with-lock-pin",
        ),
        pytest.param(
            "[[connectors]]\n[connectors.lock]\ndrive_time = 2.5\nretries = 3",
            "connectors[0].lock",
            "(3 retries + 1) x (2.5 s drive + 0.2 s settle) + 4 x 2.0 s pause = 18.8 s,"
            " more than the 9.0 s",
            id="unlock-too-slow",
        ),
        pytest.param(
            "[[connectors]]\n[connectors.lock]\nheal_pause = 60\nheal_pause_max = 30",
            "connectors[0].lock.heal_pause_max",
            "must not be shorter than heal_pause",
            id="heal-pause-max-below-first",
        ),
        pytest.param(
            "[rig]\nlock_travel_time = 0.5",
            "rig.lock_travel_time",
            "0.5 s is not shorter than connectors[0].lock.drive_time (0.5 s)",
            id="rig-lock-too-slow",
        ),
        pytest.param(
            'charge_point_id = "cp 1"',
            "charge_point_id",
            "' ' is not allowed: use letters A-Z a-z, digits 0-9 and . _ : -, 1 to 48 of them",
            id="id-with-space",
        ),
        pytest.param(
            'charge_point_id = "cp/1"',
            "charge_point_id",
            "'/' is not allowed: use letters A-Z a-z, digits 0-9 and . _ : -",
            id="id-with-slash",
        ),
        pytest.param(
            'charge_point_id = "cp-1\\n"',
            "charge_point_id",
            "'\\n' is not allowed",
            id="id-with-trailing-newline",
        ),
        pytest.param(
            'charge_point_id = ""',
            "charge_point_id",
            "empty: use letters",
            id="id-empty",
        ),
        pytest.param(
            f'charge_point_id = "{"x" * 49}"',
            "charge_point_id",
            "49 characters is too many: use letters A-Z a-z, digits 0-9 and . _ : -, 1 to 48",
            id="id-too-long",
        ),
        pytest.param(
            'csms_url = "http://csms.example.com"',
            "csms_url",
            "must start with ws:// or wss://",
            id="http-url",
        ),
        pytest.param(
            'csms_url = "ws:///ocpp"', "csms_url", "and name a host", id="url-without-host"
        ),
        pytest.param(
            'pin_factory = "gpio"',
            "pin_factory",
            "use one of lgpio, rpigpio, pigpio, native, mock",
            id="pin-factory",
        ),
        pytest.param(
            'log_level = "LOUD"',
            "log_level",
            "use one of DEBUG, INFO, WARNING, ERROR",
            id="log-level",
        ),
        pytest.param(
            '[bench]\nport = "http"', "bench.port", "should be a valid integer", id="wrong-type"
        ),
        pytest.param(
            '[bench]\nallowed_hosts = ["bench.example.lan", "http://bench.example.lan:8180"]',
            "bench.allowed_hosts",
            "'http://bench.example.lan:8180' is not a host name: give the name alone",
            id="allowed-host-with-scheme",
        ),
    ],
)
def test_a_problem_in_the_file_is_one_line_naming_its_key(
    charger: Charger, toml: str, key: str, reason: str
) -> None:
    charger.write(toml + "\n")

    assert_one_problem(charger.problems(), key, reason)


def test_allowed_bench_hosts_are_kept_as_names(charger: Charger) -> None:
    charger.env["CP_PI_BENCH__ALLOWED_HOSTS"] = '["Bench.Example.LAN", "[fd00::5]", "10.0.0.2"]'

    assert charger.load().bench.allowed_hosts == ["bench.example.lan", "fd00::5", "10.0.0.2"]


def test_a_pin_used_by_two_connectors_names_both(charger: Charger) -> None:
    charger.write(
        """
        [[connectors]]
        [[connectors]]
        proximity_pin = 17
        pilot = "none"
        [connectors.lock]
        lock_pin = 6
        unlock_pin = 12
        feedback_pin = 13
        [connectors.contactor]
        pin = 16
        feedback_pin = 19
        """
    )

    assert charger.problems() == [
        "connectors[1].proximity_pin: GPIO17 is already used by connectors[0].proximity_pin"
    ]


def test_an_unknown_environment_variable_is_named(charger: Charger) -> None:
    charger.env = {"CP_PI_CHARGE_POINT_IDD": "cp-7", "HOME": "/home/pi"}

    assert charger.problems() == [
        "charge_point_idd: unknown setting (environment variable CP_PI_CHARGE_POINT_IDD)"
    ]


def test_an_unknown_key_of_a_table_in_the_environment_is_named(charger: Charger) -> None:
    charger.env = {"CP_PI_BENCH__PORTT": "9000"}

    assert charger.problems() == [
        "bench.portt: unknown setting (environment variable CP_PI_BENCH__PORTT)"
    ]


def test_connectors_that_are_not_json_are_named(charger: Charger) -> None:
    charger.env = {"CP_PI_CONNECTORS": '[{"proximity_pin": 5}'}

    assert_one_problem(charger.problems(), "connectors", "not valid JSON")
    assert "(environment variable CP_PI_CONNECTORS)" in charger.problems()[0]


def test_a_toml_syntax_error_gives_file_line_and_column(charger: Charger) -> None:
    path = charger.write('charge_point_id = "cp-1"\nlog_level = \n')

    assert charger.problems() == [f"{path}, line 2, column 13: Invalid value"]


def test_every_problem_is_reported_at_once(charger: Charger) -> None:
    charger.write(
        """
        csms_url = "http://csms.example.com"
        [[connectors]]
        proximity_pin = 1
        [connectors.lock]
        drive_time = 5.0
        """
    )
    charger.env = {"CP_PI_LOG_LEVL": "DEBUG"}

    keys = [line.split(": ", 1)[0] for line in charger.problems()]

    assert sorted(keys) == [
        "connectors[0].lock.drive_time",
        "connectors[0].proximity_pin",
        "csms_url",
        "log_levl",
    ]


def test_every_rule_between_keys_is_reported_at_once(charger: Charger) -> None:
    charger.write(
        """
        [[connectors]]
        [connectors.lock]
        kind = "motor"
        unlock_pin = "none"
        feedback_pin = "none"
        """
    )

    assert [line.split(": ", 1)[0] for line in charger.problems()] == [
        "connectors[0].lock.unlock_pin",
        "connectors[0].lock.feedback_pin",
    ]


# The command line


def test_exit_prints_only_the_problems_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[bench]\nport = 70000\n")

    with pytest.raises(SystemExit) as exited:
        load_settings_or_exit(bad)

    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    # Stray CP_PI_* variables of the shell running the suite would add lines before it.
    assert lines[-1] == "cp-pi: config error: bench.port: should be less than or equal to 65535"
    assert all(line.startswith("cp-pi: config error: ") for line in lines)


def test_check_config_refuses_a_bad_file_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[connectors]]\n[connectors.lock]\ndrive_time = 5.0\n")

    run = subprocess.run(
        [sys.executable, "-m", "cp_pi", "check-config", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_without_ours(),
    )

    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "cp-pi: config error: connectors[0].lock.drive_time: 5.0 s is above the 3.0 s ceiling"
        " (a longer drive burns the actuator)"
    ]


# What `cp-pi run` refuses, `cp-pi check-config` refuses: the same line, status 2


def test_real_pins_need_a_central_system(charger: Charger) -> None:
    charger.write('pin_factory = "lgpio"\n')
    settings = charger.load()

    with pytest.raises(ConfigError) as refused:
        check_runnable(settings, mock_pins=False)

    assert_one_problem(refused.value.lines, "csms_url", "required on real pins")
    check_runnable(settings, mock_pins=True)  # the embedded central system serves mock pins
    check_runnable(
        settings.model_copy(update={"csms_url": "ws://csms.example.com/ocpp"}), mock_pins=False
    )


@pytest.mark.parametrize(
    "toml",
    [
        pytest.param('pin_factory = "lgpio"\n', id="no-csms-url-on-real-pins"),
        pytest.param('charge_point_id = "cp/1"\n', id="bad-id"),
        pytest.param("[[connectors]]\n[[connectors]]\n", id="two-connectors-on-the-same-pins"),
        pytest.param(
            '[[connectors]]\n[connectors.lock]\nfeedback_pin = "none"\n', id="lock-without-feedback"
        ),
    ],
)
def test_check_config_refuses_what_run_refuses_with_the_same_line(
    tmp_path: Path, toml: str
) -> None:
    config = tmp_path / "cp-pi.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n' + toml)

    def cp_pi(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cp_pi", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment_without_ours(),
        )

    checked, ran = cp_pi("check-config"), cp_pi("run")

    assert (checked.returncode, ran.returncode) == (2, 2)
    assert checked.stderr == ran.stderr
    assert checked.stderr.startswith("cp-pi: config error: ")
    assert checked.stdout == ""


def test_check_config_prints_the_pin_map_with_header_pins(tmp_path: Path) -> None:
    config = tmp_path / "cp-pi.toml"
    config.write_text('pin_factory = "mock"\n[[connectors]]\n[connectors.lock]\nfeedback_pin = 5\n')

    run = subprocess.run(
        [sys.executable, "-m", "cp_pi", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_without_ours(),
    )

    assert run.returncode == 0, run.stderr
    pin_map = run.stdout[run.stdout.index("connector 1 pin map:") :].splitlines()[1:]
    rows = [" ".join(line.split()) for line in pin_map]
    assert rows == [
        "proximity (plug present) GPIO17 / pin 11 input high = plug present",
        "lock coil GPIO22 / pin 15 output high = drive",
        "unlock coil GPIO23 / pin 16 output high = drive",
        "lock feedback GPIO5 / pin 29 input low = engaged",
        "contactor GPIO24 / pin 18 output high = closed",
        "contactor aux contact GPIO25 / pin 22 input low = closed",
        # mock pins give the residual-current monitor by default
        "residual current trip GPIO26 / pin 37 input high = tripped",
        "residual current test GPIO16 / pin 36 output high = test",
        "control pilot (1 kHz PWM) GPIO18 / pin 12 output high = +12 V, low = -12 V",
    ]


# The meter section


def test_a_connector_meter_is_simulated_on_mock_pins_and_none_on_real_ones(
    charger: Charger,
) -> None:
    charger.write(
        """
        [[connectors]]
        [[connectors]]
        proximity_pin = 5
        lock.kind = "none"
        contactor = { pin = 16, feedback_pin = 19 }
        meter = { kind = "none", poll_interval = 0.5 }
        pilot = "none"
        """
    )
    first, second = charger.load().connectors

    assert (first.meter.resolved(mock_pins=True), first.meter.resolved(mock_pins=False)) == (
        MeterKind.SIMULATED,
        MeterKind.NONE,
    )
    assert second.meter.resolved(mock_pins=True) is MeterKind.NONE
    assert second.meter.poll_interval == 0.5


@pytest.mark.parametrize(
    ("meter", "key", "reason"),
    [
        ('kind = "pulse"', "connectors[0].meter.kind", "'none', 'simulated' or 'modbus'"),
        ('kind = "modbus"\nhost = "10.0.0.5"', "connectors[0].meter.model", "needs one"),
        ('kind = "modbus"\nmodel = "sdm72"', "connectors[0].meter.model", "'sdm120' or 'sdm230'"),
        ('kind = "modbus"\nmodel = "sdm630"', "connectors[0].meter.port", "serial device"),
        (
            'kind = "modbus"\nmodel = "sdm630"\nhost = "10.0.0.5"\nport = 70000',
            "connectors[0].meter.port",
            "1..65535",
        ),
        ('parity = "X"', "connectors[0].meter.parity", "'N', 'E' or 'O'"),
        ("unit = 0", "connectors[0].meter.unit", "greater than or equal to 1"),
        ('on_failure = "halt"', "connectors[0].meter.on_failure", "'continue' or 'stop'"),
        ("pol_interval = 1", "connectors[0].meter.pol_interval", "unknown setting"),
        ("poll_interval = 0", "connectors[0].meter.poll_interval", "greater than 0"),
    ],
)
def test_a_bad_meter_setting_is_one_line_naming_its_key(
    charger: Charger, meter: str, key: str, reason: str
) -> None:
    charger.write(f"[[connectors]]\n[connectors.meter]\n{meter}\n")

    assert_one_problem(charger.problems(), key, reason)


def test_the_simulated_meter_runs_on_mock_pins_only(charger: Charger) -> None:
    charger.write(
        'csms_url = "ws://csms.example.com/ocpp"\n[[connectors]]\nmeter.kind = "simulated"\n'
    )
    settings = charger.load()

    with pytest.raises(ConfigError) as refused:
        check_runnable(settings, mock_pins=False)

    assert_one_problem(refused.value.lines, "connectors[0].meter.kind", "mock pins only")
    check_runnable(settings, mock_pins=True)


# The residual-current monitor


def test_mock_pins_give_a_residual_current_monitor_and_rcd_none_takes_it_away(
    charger: Charger,
) -> None:
    charger.write(
        """
        [[connectors]]
        [[connectors]]
        proximity_pin = 5
        lock.kind = "none"
        contactor = { pin = 12, feedback_pin = 19 }
        rcd = "none"
        pilot = "none"
        """
    )
    settings = charger.load()

    first, second = connectors_on(settings.connectors, mock_pins=True)
    assert first.rcd_module == RcdConfig(trip_pin=26, test_pin=16)
    assert second.rcd_module is None
    assert [c.rcd_module for c in connectors_on(settings.connectors, mock_pins=False)] == [
        None,
        None,
    ]


def test_a_default_monitor_landing_on_a_used_pin_names_the_way_out(charger: Charger) -> None:
    charger.write(
        """
        csms_url = "ws://csms.example.com/ocpp"
        [[connectors]]
        [[connectors]]
        proximity_pin = 5
        lock.kind = "none"
        contactor = { pin = 12, feedback_pin = 19 }
        pilot = "none"
        """
    )
    settings = charger.load()
    check_runnable(settings, mock_pins=False)  # real pins give no default monitor

    with pytest.raises(ConfigError) as refused:
        check_runnable(settings, mock_pins=True)

    assert refused.value.lines == [
        "connectors[1].rcd.trip_pin: GPIO26 is already used by connectors[0].rcd.trip_pin (the"
        " residual-current monitor mock pins give by default: give this connector its own rcd"
        ' pins, or rcd = "none")',
        "connectors[1].rcd.test_pin: GPIO16 is already used by connectors[0].rcd.test_pin (the"
        " residual-current monitor mock pins give by default: give this connector its own rcd"
        ' pins, or rcd = "none")',
    ]


def test_a_monitor_section_without_a_trip_pin_is_refused(charger: Charger) -> None:
    charger.write('[[connectors]]\n[connectors.rcd]\ntrip_pin = "none"\n')

    assert_one_problem(charger.problems(), "connectors[0].rcd.trip_pin", "integer")
