"""One error vocabulary: every failure a person is told about carries its exit status."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from cp_pi.app import StationError
from cp_pi.commands.fleet import FleetOptionsError
from cp_pi.config import ConfigError
from cp_pi.errors import CpPiError, report
from cp_pi.hardware.factory import HardwareUnavailable
from cp_pi.listening import CannotListen
from cp_pi.runlock import AlreadyRunning


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(ConfigError(["bench.port: too big"]), 2, id="config"),
        pytest.param(StationError("config error: x"), 2, id="station"),
        pytest.param(
            CannotListen("127.0.0.1", 80, OSError(errno.EADDRINUSE, "in use")), 2, id="listen"
        ),
        pytest.param(AlreadyRunning(Path("/run/cp-pi/cp-pi.lock")), 2, id="already-running"),
        pytest.param(FleetOptionsError("--count 0: at least 1"), 2, id="fleet-options"),
        pytest.param(HardwareUnavailable("install lgpio"), 1, id="hardware"),
    ],
)
def test_each_failure_a_person_sees_carries_its_exit_status(error: CpPiError, status: int) -> None:
    assert isinstance(error, CpPiError)
    assert report(error, io.StringIO()) == status


def test_a_report_is_one_line_per_problem_after_the_command_name() -> None:
    out = io.StringIO()
    report(ConfigError(["bench.port: too big", "charge_point_id: empty"]), out)
    assert out.getvalue().splitlines() == [
        "cp-pi: config error: bench.port: too big",
        "cp-pi: config error: charge_point_id: empty",
    ]


def test_a_hint_follows_the_message_on_its_line() -> None:
    error = CannotListen("127.0.0.1", 8080, OSError(errno.EADDRINUSE, "in use"))
    error.hint = "choose another with --port"
    out = io.StringIO()
    report(error, out)
    assert out.getvalue() == (
        "cp-pi: cannot listen on 127.0.0.1:8080: the port is in use by another program;"
        " choose another with --port\n"
    )
