"""`cp-pi check-wiring` reads the residual-current input and fires its test output."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from cp_pi.config import ConnectorConfig, LockConfig, RcdConfig, RigConfig, Settings
from cp_pi.hardware.rig import RigFault
from tests.conftest import FAST_LOCK, fast_settings
from tests.hardware.pins import pulses
from tests.wiring.test_check import check

TRIP_PIN, TEST_PIN = 26, 16


def with_rcd(tmp_path: Path, *, test_timeout: float = 0.2, **changes: object) -> Settings:
    rcd = RcdConfig(trip_pin=TRIP_PIN, test_pin=TEST_PIN, test_timeout=test_timeout)
    connectors = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), rcd=rcd)]
    return fast_settings(tmp_path / "data", None, connectors=connectors, **changes)


async def test_a_sound_module_passes_and_is_tested_through_its_test_output(
    tmp_path: Path,
) -> None:
    run = await check(with_rcd(tmp_path))

    assert run.verdicts["residual current healthy"] == "pass"
    assert run.verdicts["residual current self-test"] == "pass"
    assert "  residual current trip       GPIO26 / pin 37   input   high = tripped" in run.lines
    assert "  residual current test       GPIO16 / pin 36   output  high = test" in run.lines
    assert "  residual curr.  healthy       GPIO26 / pin 37 reads low" in run.lines
    assert run.lines[-1] == "all 12 checks passed on mock pins"
    assert run.status == 0


async def test_a_tripped_module_fails_with_what_to_check_and_where(tmp_path: Path) -> None:
    run = await check(with_rcd(tmp_path), fault=RigFault.RCD_TRIP)

    assert run.verdicts["residual current healthy"] == "FAIL"
    assert "residual current self-test" not in run.verdicts
    assert run.advice("residual current healthy").startswith(
        "GPIO26 / pin 37 reads tripped with no vehicle: check the module's supply"
    )
    assert run.verdicts["contactor closes"] == "FAIL"  # never closed while tripped
    assert run.status == 1


async def test_a_module_that_does_not_answer_its_test_input_fails_the_self_test(
    tmp_path: Path,
) -> None:
    slow = RigConfig(lock_travel_time=0.02, contactor_delay=0.05)
    run = await check(with_rcd(tmp_path, test_timeout=0.005, rig=slow))

    assert run.verdicts["residual current self-test"] == "FAIL"
    assert "check the wire from GPIO16 / pin 36" in run.advice("residual current self-test")
    assert run.status == 1


async def test_the_test_output_fires_once_and_is_left_off(tmp_path: Path) -> None:
    factory = MockFactory()
    try:
        run = await check(with_rcd(tmp_path), pin_factory=factory)
        assert run.status == 0
        assert len(pulses(factory.pin(TEST_PIN))) == 1
        assert not factory.pin(TEST_PIN).state
    finally:
        factory.reset()


async def test_the_rcd_trip_fault_needs_a_monitor(tmp_path: Path) -> None:
    connectors = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), rcd="none")]
    settings = fast_settings(tmp_path / "data", None, connectors=connectors)

    run = await check(settings, fault=RigFault.RCD_TRIP)

    assert run.lines == ['cp-pi: --fault rcd_trip needs a residual-current monitor: rcd is "none"']
    assert run.status == 2
