"""`cp-pi check-wiring` on mock pins with the bench rig: what the electrician reads, and the pins.

The rig creates every pin of a connector in one go, so the pins' histories (deltas from their
creation) share a start and can be compared with each other.
"""

from __future__ import annotations

import asyncio
import io
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from cp_pi.config import ConnectorConfig, ContactorConfig, LockConfig, Settings
from cp_pi.hardware.factory import gpio_chip_found
from cp_pi.hardware.rig import RigFault
from cp_pi.wiring.check import QUESTION, check_wiring
from tests.conftest import FAST_LOCK, fast_settings, fixed_cable
from tests.hardware.helpers import FIRST
from tests.hardware.pins import pulses
from tests.test_runlock import held_by_another_process

OUTPUTS = (FIRST.lock, FIRST.unlock, FIRST.contactor)
CHECKS = [
    "contactor open before the test",
    "lock engages",
    "contactor closes",
    "contactor opens",
    "lock releases",
]
#: What mock pins give every connector by default, checked before the question (nothing moves).
HARMLESS = {
    "meter answers": "pass",
    "control pilot reads +12 V": "pass",
    "proximity pilot open": "pass",
    "control pilot drives -12 V": "pass",
    "control pilot back to +12 V": "pass",
    "residual current healthy": "pass",
    "residual current self-test": "pass",
}
ROW = re.compile(r"^  (\d+)\s{2,}(\S.*?)\s{2,}(pass|FAIL|not run)$")


@dataclass
class Run:
    """One run of the self-test: its exit status and everything it printed."""

    status: int
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def verdicts(self) -> dict[str, str]:
        """Connector 1's rows of the result table: check name -> pass, FAIL or not run."""
        rows = (ROW.match(line) for line in self.lines)
        return {row[2]: row[3] for row in rows if row and row[1] == "1"}

    def advice(self, check: str) -> str:
        """The "->" line printed under a check's row."""
        lines = self.lines
        for index, line in enumerate(lines):
            row = ROW.match(line)
            if row and row[2] == check:
                return lines[index + 1].strip().removeprefix("-> ")
        raise AssertionError(f"no row for {check!r} in:\n{self.text}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "data", None)


@pytest.fixture
def factory() -> Iterator[Any]:
    pins = MockFactory()
    yield pins
    pins.reset()


async def check(
    settings: Settings,
    *,
    fault: RigFault | None = None,
    assume_yes: bool = True,
    ask: Callable[[str], bool] | None = None,
    pin_factory: Any = None,
    out: io.StringIO | None = None,
) -> Run:
    out = out or io.StringIO()
    status = await check_wiring(
        settings, assume_yes=assume_yes, fault=fault, out=out, ask=ask, pin_factory=pin_factory
    )
    return Run(status, out.getvalue())


def never_driven(factory: Any) -> bool:
    return all(not pulses(factory.pin(pin)) for pin in OUTPUTS)


# -- the verdicts -----------------------------------------------------------------------------


async def test_a_sound_charger_passes_every_check(settings: Settings) -> None:
    run = await check(settings)

    assert run.verdicts == HARMLESS | dict.fromkeys(CHECKS, "pass")
    assert run.lines[-1] == "all 12 checks passed on mock pins"
    assert run.status == 0


async def test_a_stuck_lock_fails_with_the_feedback_hint(settings: Settings) -> None:
    run = await check(settings, fault=RigFault.LOCK_STUCK)

    assert run.verdicts == HARMLESS | {
        "contactor open before the test": "pass",
        "lock engages": "FAIL",
        "contactor closes": "not run",
        "contactor opens": "not run",
        "lock releases": "not run",
    }
    assert run.advice("lock engages").startswith(
        "lock feedback never changed: check the switch wiring on GPIO27 / pin 13;"
    )
    assert run.advice("lock releases") == "the lock never reported engaged"
    assert run.status == 1


async def test_a_broken_feedback_wire_fails_the_engaged_check(settings: Settings) -> None:
    run = await check(settings, fault=RigFault.FEEDBACK_BROKEN)

    assert run.verdicts["lock engages"] == "FAIL"
    assert "GPIO27 / pin 13" in run.advice("lock engages")
    assert run.advice("contactor closes") == "the lock must be engaged before the contactor closes"
    assert run.status == 1


async def test_a_welded_contactor_fails_the_aux_check_and_keeps_the_lock_engaged(
    settings: Settings,
) -> None:
    run = await check(settings, fault=RigFault.CONTACTOR_WELDED)

    assert run.verdicts == HARMLESS | {
        "contactor open before the test": "pass",
        "lock engages": "pass",
        "contactor closes": "pass",
        "contactor opens": "FAIL",
        "lock releases": "not run",
    }
    assert run.advice("contactor opens") == (
        "contactor aux contact stayed closed after opening: welded contact or aux wiring on"
        " GPIO25 / pin 22"
    )
    assert "the lock stays engaged" in run.advice("lock releases")
    assert run.status == 1


# -- what it prints before driving ------------------------------------------------------------


async def test_the_pin_map_names_each_pin_by_bcm_number_and_header_position(
    settings: Settings,
) -> None:
    run = await check(settings)

    assert re.search(r"^  lock feedback\s+GPIO27 / pin 13\s+input\s+low = engaged$", run.text, re.M)
    assert re.search(r"^  contactor\s+GPIO24 / pin 18\s+output\s+high = closed$", run.text, re.M)


async def test_a_moved_pin_is_shown_where_it_lands_on_the_header(tmp_path: Path) -> None:
    lock = LockConfig(drive_time=0.05, pause=0.05, settle_time=0.01, feedback_pin=5)
    settings = fast_settings(tmp_path / "data", None, connectors=[ConnectorConfig(lock=lock)])

    run = await check(settings)

    assert re.search(r"^  lock feedback\s+GPIO5 / pin 29\s", run.text, re.M)
    assert run.status == 0


async def test_every_input_is_read_with_its_meaning_and_level(settings: Settings) -> None:
    run = await check(settings)

    inputs = run.lines[run.lines.index("connector 1 inputs now:") + 1 :][:3]
    assert [line.split() for line in inputs] == [
        ["cable", "no", "plug", "GPIO17", "/", "pin", "11", "reads", "low"],
        ["lock", "feedback", "released", "GPIO27", "/", "pin", "13", "reads", "high"],
        ["contactor", "aux", "open", "GPIO25", "/", "pin", "22", "reads", "high"],
    ]


# -- the order of the drives and the end state --------------------------------------------------


async def test_the_contactor_closes_only_while_the_lock_is_engaged_and_all_ends_off(
    settings: Settings, factory: Any
) -> None:
    run = await check(settings, pin_factory=factory)

    assert run.status == 0
    [(_, engaged)] = pulses(factory.pin(FIRST.lock))
    [(closed, opened)] = pulses(factory.pin(FIRST.contactor))
    [(release, _)] = pulses(factory.pin(FIRST.unlock))
    assert engaged < closed < opened < release
    assert not any(factory.pin(pin).state for pin in OUTPUTS)


async def test_a_plug_in_the_socket_keeps_the_contactor_open(
    settings: Settings, factory: Any
) -> None:
    def plug_in_then_agree(question: str) -> bool:
        factory.pin(FIRST.proximity).drive_high()  # active high: a plug is present
        return True

    run = await check(settings, assume_yes=False, ask=plug_in_then_agree, pin_factory=factory)

    assert run.verdicts["contactor closes"] == "not run"
    assert run.advice("contactor closes").startswith("a plug is in the socket")
    assert not pulses(factory.pin(FIRST.contactor))
    assert run.status == 1


async def test_cancelled_mid_test_every_output_ends_off(settings: Settings, factory: Any) -> None:
    class CancelWhenClosing(io.StringIO):
        task: asyncio.Task[Run] | None = None

        def write(self, text: str) -> int:
            if "connector 1: closing the contactor" in text and self.task is not None:
                self.task.cancel()  # what Ctrl+C does to asyncio.run's task
            return super().write(text)

    out = CancelWhenClosing()
    out.task = asyncio.create_task(check(settings, pin_factory=factory, out=out))
    with pytest.raises(asyncio.CancelledError):
        await out.task

    assert pulses(factory.pin(FIRST.contactor)), "the contactor was being closed"
    assert not any(factory.pin(pin).state for pin in OUTPUTS)
    assert "interrupted: every output is off" in out.getvalue()


async def test_a_lock_found_engaged_is_released_first_so_engaging_proves_it_moves(
    settings: Settings, factory: Any
) -> None:
    def find_the_lock_engaged(question: str) -> bool:
        factory.pin(FIRST.feedback).drive_low()  # active low: reads engaged
        return True

    run = await check(settings, assume_yes=False, ask=find_the_lock_engaged, pin_factory=factory)

    released = {"lock released before the test": "pass"}
    assert run.verdicts == HARMLESS | released | dict.fromkeys(CHECKS, "pass")
    assert len(pulses(factory.pin(FIRST.unlock))) == 2
    assert run.status == 0


# -- when it refuses --------------------------------------------------------------------------


async def test_it_asks_before_driving_and_drives_nothing_when_declined(
    settings: Settings, factory: Any
) -> None:
    asked: list[str] = []

    def decline(question: str) -> bool:
        asked.append(question)
        return False

    run = await check(settings, assume_yes=False, ask=decline, pin_factory=factory)

    assert asked == [QUESTION]
    assert QUESTION.startswith("Drive the lock and the contactor now? [y/N]")
    assert run.verdicts == HARMLESS | {"lock and contactor": "not run"}
    assert never_driven(factory)
    assert run.status == 1


async def test_without_a_terminal_it_wants_yes(settings: Settings, factory: Any) -> None:
    run = await check(settings, assume_yes=False, ask=None, pin_factory=factory)

    assert run.status == 2
    assert "pass --yes" in run.text
    assert not factory.pins, "no pin was even opened"


async def test_it_refuses_while_the_service_holds_the_run_lock(
    settings: Settings, factory: Any
) -> None:
    async with held_by_another_process(settings.data_dir):
        run = await check(settings, pin_factory=factory)

    lock_file = settings.data_dir / "cp-pi.lock"
    assert run.lines == [
        f"cp-pi is running (lock held on {lock_file}): stop the service first:"
        " sudo systemctl stop cp-pi"
    ]
    assert run.status == 2
    assert not factory.pins


async def test_with_no_gpio_chip_it_says_so_and_checks_nothing(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", None).model_copy(update={"pin_factory": None})
    out = io.StringIO()

    status = await check_wiring(
        settings, assume_yes=True, fault=None, out=out, ask=None, dev=tmp_path / "dev"
    )

    assert status == 1
    assert out.getvalue().splitlines() == [
        f"cp-pi: no GPIO chip found ({tmp_path / 'dev'}/gpiochip*): there is no wiring to check"
        " on this machine; on a Pi, see that the GPIO driver is loaded; --mock checks the"
        " simulated rig instead"
    ]


# -- as a command, in a process of its own -----------------------------------------------------


#: The command's entry until `cp-pi check-wiring` is wired: settings from the file, no terminal.
def config_file(tmp_path: Path, lock: str = "") -> Path:
    path = tmp_path / "cp-pi.toml"
    path.write_text(
        f'pin_factory = "mock"\ndata_dir = "{tmp_path / "data"}"\n'
        f"[[connectors]]\n[connectors.lock]\n{lock}"
    )
    return path


async def command(config: Path, *flags: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cp_pi",
        "check-wiring",
        "--config",
        str(config),
        *flags,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_command_passes_on_the_rig_with_yes(tmp_path: Path) -> None:
    status, output = await finish(await command(config_file(tmp_path), "--yes"))

    assert output.splitlines()[-1] == "all 12 checks passed on mock pins"
    assert status == 0


@pytest.mark.skipif(gpio_chip_found(), reason="this machine has a GPIO chip")
async def test_the_command_passes_on_mock_pins_only_when_asked_for(tmp_path: Path) -> None:
    config = tmp_path / "cp-pi.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')  # no pin_factory: the machine's

    status, output = await finish(await command(config, "--yes"))

    assert status == 1
    assert "no GPIO chip found" in output
    assert "passed" not in output

    status, output = await finish(await command(config, "--yes", "--mock"))

    assert output.splitlines()[-1] == "all 12 checks passed on mock pins"
    assert status == 0


async def test_the_command_without_a_terminal_refuses_unless_told_yes(tmp_path: Path) -> None:
    status, output = await finish(await command(config_file(tmp_path)))

    assert "pass --yes" in output
    assert status == 2


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)],
)
async def test_ctrl_c_or_sigterm_mid_drive_stops_with_every_output_off(
    tmp_path: Path, signum: int, status: int
) -> None:
    # One long drive, so the signal lands while the lock coil is on.
    slow_lock = "drive_time = 3.0\nretries = 0\n"
    process = await command(config_file(tmp_path, slow_lock), "--yes")
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while b"driving the lock to engaged" not in await process.stdout.readline():
            pass
    process.send_signal(signum)

    code, rest = await finish(process)

    assert "interrupted: every output is off" in rest
    assert code == status


# -- other connectors --------------------------------------------------------------------------


async def test_a_fixed_cable_checks_the_contactor_alone(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", None, connectors=fixed_cable())

    run = await check(settings)

    assert run.verdicts == HARMLESS | {
        "contactor open before the test": "pass",
        "contactor closes": "pass",
        "contactor opens": "pass",
    }
    assert "lock" not in run.text.split("pin map:")[1].split("inputs now:")[0]
    assert run.status == 0


async def test_without_an_aux_contact_the_contactor_is_left_alone(
    tmp_path: Path, factory: Any
) -> None:
    connector = ConnectorConfig(
        lock=LockConfig(**FAST_LOCK), contactor=ContactorConfig(feedback_pin=None)
    )
    settings = fast_settings(tmp_path / "data", None, connectors=[connector])

    run = await check(settings, pin_factory=factory)

    assert run.verdicts == HARMLESS | {"lock engages": "pass", "lock releases": "pass"}
    assert "no aux contact configured: the contactor is not driven" in run.text
    assert not pulses(factory.pin(FIRST.contactor))
    assert run.status == 0
