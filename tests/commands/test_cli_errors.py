"""Every `cp-pi` command given a mistake, as a user makes it: one line, exit status 2, no traceback.

Each case runs the real command in a process of its own (``python -m cp_pi``), with none of the
shell's ``CP_PI_*`` variables, so what it prints is what a user at a terminal reads.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cp_pi.config import BenchConfig, Settings

#: Stands for the port the test holds open, in a case's arguments.
TAKEN = "<taken>"


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def cp_pi(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CP_PI_")}
    environ |= {"HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cp_pi", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        pytest.param([], {}, "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(["charge"], {}, "invalid choice: 'charge'", id="unknown-command"),
        pytest.param(["run", "--verbose"], {}, "unrecognized arguments: --verbose", id="run-flag"),
        pytest.param(
            ["run", "--mock", "--bench-port", "99999"],
            {},
            "cp-pi run: argument --bench-port: 99999 is not a port number (0 to 65535)",
            id="run-port-out-of-range",
        ),
        pytest.param(
            ["run", "--mock", "--bench-port", "http"],
            {},
            "argument --bench-port: 'http' is not a port number",
            id="run-port-not-a-number",
        ),
        pytest.param(
            ["run", "--mock", "--bench-port", TAKEN],
            {},
            "the port is in use by another program; choose another with --bench-port",
            id="run-port-taken",
        ),
        pytest.param(
            ["run", "--mock", "--id", "bay 1"],
            {},
            "cp-pi: config error: charge_point_id: ' ' is not allowed: use letters A-Z a-z,"
            " digits 0-9 and . _ : -, 1 to 48 of them",
            id="run-id-with-space",
        ),
        pytest.param(
            ["run", "--csms-url", "http://csms.example.com"],
            {},
            "config error: csms_url: 'http://csms.example.com' is not a central system address",
            id="run-http-url",
        ),
        pytest.param(
            ["run"],
            {"CP_PI_PIN_FACTORY": "lgpio"},
            "config error: csms_url: required on real pins",
            id="run-real-pins-without-csms",
        ),
        pytest.param(
            ["run", "--config", "absent.toml"],
            {},
            "config error: absent.toml: no such file",
            id="run-missing-config",
        ),
        pytest.param(["demo", "--fast"], {}, "unrecognized arguments: --fast", id="demo-flag"),
        pytest.param(
            ["bench", "--port", "-1"],
            {},
            "cp-pi bench: argument --port: -1 is not a port number (0 to 65535)",
            id="bench-port-out-of-range",
        ),
        pytest.param(
            ["bench", "--port", TAKEN],
            {},
            "the port is in use by another program; choose another with --port",
            id="bench-port-taken",
        ),
        pytest.param(
            ["csms", "--port", "99999"],
            {},
            "cp-pi csms: argument --port: 99999 is not a port number (0 to 65535)",
            id="csms-port-out-of-range",
        ),
        pytest.param(
            ["csms", "--port", TAKEN],
            {},
            "the port is in use by another program; choose another with --port",
            id="csms-port-taken",
        ),
        pytest.param(
            ["csms", "--host", "10.255.255.254", "--port", "0"],
            {},
            "cannot listen on 10.255.255.254:0: not an address of this machine; choose another"
            " with --host",
            id="csms-host-not-here",
        ),
        pytest.param(
            ["csms", "--host", "no-such-host.invalid", "--port", "0"],
            {},
            "no such host name",
            id="csms-unknown-host",
        ),
        pytest.param(
            ["fleet"], {}, "the following arguments are required: --count", id="fleet-no-count"
        ),
        pytest.param(
            ["fleet", "--count", "many"], {}, "invalid int value: 'many'", id="fleet-count-word"
        ),
        pytest.param(["fleet", "--count", "0"], {}, "--count 0: at least 1", id="fleet-count-0"),
        pytest.param(
            ["fleet", "--count", "1", "--csms-url", "http://x"],
            {},
            "--csms-url: 'http://x' is not a central system address",
            id="fleet-http-url",
        ),
        pytest.param(
            ["fleet", "--count", "1", "--rate", "0"], {}, "--rate 0: above 0", id="fleet-rate-0"
        ),
        pytest.param(
            ["fleet", "--count", "1", "--pattern", "rush"],
            {},
            "argument --pattern: invalid choice: 'rush'",
            id="fleet-pattern",
        ),
        pytest.param(
            ["check-config"],
            {"CP_PI_BENCH__PORT": "http"},
            "config error: bench.port: should be a valid integer",
            id="check-config-env",
        ),
        pytest.param(
            ["check-config"],
            {"CP_PI_PIN_FACTORY": "lgpio"},
            "config error: csms_url: required on real pins",
            id="check-config-real-pins-without-csms",
        ),
        pytest.param(
            ["status", "--jsn"], {}, "unrecognized arguments: --jsn", id="status-bad-option"
        ),
        pytest.param(
            ["check-wiring", "--fault", "melted"],
            {},
            "argument --fault: invalid choice: 'melted'",
            id="check-wiring-fault",
        ),
    ],
)
def test_a_mistake_is_one_line_and_exit_status_2(
    tmp_path: Path, taken_port: int, args: list[str], env: dict[str, str], said: str
) -> None:
    args = [str(taken_port) if arg == TAKEN else arg for arg in args]

    result = cp_pi(*args, home=tmp_path, env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert said in result.stderr
    assert result.stderr.startswith("cp-pi")


def test_check_wiring_without_a_terminal_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    # Its refusals belong to its report, on standard output like the rest of it.
    result = cp_pi("check-wiring", "--mock", home=tmp_path)

    assert result.returncode == 2
    assert (result.stdout + result.stderr).splitlines() == [
        "cp-pi: no terminal to confirm driving the lock and the contactor: pass --yes"
    ]


COMMANDS = ["run", "demo", "bench", "check-wiring", "csms", "fleet", "check-config", "status"]


def options(help_text: str) -> dict[str, str]:
    """Each option of a --help text and its description, joined onto one line."""
    described: dict[str, str] = {}
    name = None
    for line in help_text[help_text.index("options:") :].splitlines()[1:]:
        found = re.match(r"^  (-\S+)", line)
        if found:
            name = found[1].rstrip(",")
            described[name] = line
        elif name is not None:
            described[name] += line
    return {option: " ".join(text.split()) for option, text in described.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_the_default_of_every_option(tmp_path: Path, command: str) -> None:
    result = cp_pi(command, "--help", home=tmp_path)

    assert result.returncode == 0
    described = options(result.stdout)
    described.pop("-h")
    for text in described.values():
        assert "(default: " in text or "(required)" in text, text


def test_the_defaults_in_help_are_the_configurations(tmp_path: Path) -> None:
    run = " ".join(cp_pi("run", "--help", home=tmp_path).stdout.split())
    bench = " ".join(cp_pi("bench", "--help", home=tmp_path).stdout.split())

    assert f"(default: bench.port of the configuration, {BenchConfig().port})" in run
    cp_id = Settings.model_fields["charge_point_id"].default
    assert f"(default: charge_point_id of the configuration, {cp_id})" in run
    assert f"(default: bench.host of the configuration, {BenchConfig().host})" in bench
    csms = " ".join(cp_pi("csms", "--help", home=tmp_path).stdout.split())
    assert "--port PORT port (default: 9000)" in csms
