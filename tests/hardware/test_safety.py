"""Outputs go low on SIGTERM and at interpreter exit, whatever was running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from gpiozero.exc import PinError
from gpiozero.pins.mock import MockPin

from cp_pi.hardware import safety
from cp_pi.hardware.parts import build_connector

from .helpers import FIRST, SECOND, BenchMaker, Pins, connector


def outputs(pins: Pins) -> tuple[int, ...]:
    return (pins.lock, pins.unlock, pins.contactor)


async def test_sigterm_leaves_every_output_low(make_bench: BenchMaker) -> None:
    bench = make_bench(connector(), connector(pins=SECOND))
    charging, locking = bench.connectors
    bench.rig.plug(1)
    while not charging.cable_present:
        await bench.next_change()
    assert (await charging.lock()).ok
    assert (await charging.close_contactor()).ok
    drive = asyncio.create_task(locking.lock())
    await asyncio.sleep(0)  # the drive runs up to its pulse
    assert bench.pin(FIRST.contactor).state
    assert bench.pin(SECOND.lock).state

    loop = asyncio.get_running_loop()
    handled = asyncio.Event()

    def on_sigterm() -> None:  # what the runner installs
        safety.all_outputs_off()
        handled.set()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(1):
            await handled.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)

    assert not any(bench.pin(n).state for n in outputs(FIRST) + outputs(SECOND))
    drive.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drive


def test_outputs_go_low_at_interpreter_exit() -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from gpiozero.pins.mock import MockFactory, MockPin
        from cp_pi.config import ConnectorConfig, ContactorConfig, LockConfig, LockKind
        from cp_pi.hardware.parts import build_connector

        class Reporting(MockPin):
            def _change_state(self, value):
                changed = super()._change_state(value)
                if changed and self.function == "output":
                    print("contactor", "high" if value else "low", flush=True)
                return changed

        factory = MockFactory()
        factory.pin({FIRST.contactor}, pin_class=Reporting)
        factory.pin({FIRST.proximity}).drive_high()  # a cable is in
        config = ConnectorConfig(
            lock=LockConfig(kind=LockKind.NONE),
            contactor=ContactorConfig(pin={FIRST.contactor}, feedback_pin=None),
            pilot=None,  # the contactor alone: a pilot would keep it open without a vehicle
        )

        async def main():
            hardware = build_connector(
                1, config, pin_factory=factory, loop=asyncio.get_running_loop()
            )
            assert (await hardware.close_contactor()).ok

        asyncio.run(main())
        print("exiting", flush=True)
        """
    )

    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert run.stdout.split("\n") == ["contactor high", "exiting", "contactor low", ""]


async def test_all_outputs_off_can_run_twice_and_skips_closed_devices(
    factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    live = safety.output_device(FIRST.contactor, pin_factory=factory)
    gone = safety.output_device(FIRST.lock, pin_factory=factory)
    live.on()
    gone.close()

    safety.all_outputs_off()
    safety.all_outputs_off()

    assert not live.is_active
    assert not caplog.records
    for device in (live, gone):
        safety.unregister(device)
    live.close()


class StuckPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """An output pin whose driver stops answering, as one does when the chip goes away."""

    failing = False

    def _change_state(self, value: Any) -> bool:
        if self.failing:
            raise PinError(f"{self.info.name}: simulated write failure")
        changed: bool = super()._change_state(value)
        return changed


async def test_an_output_that_cannot_be_switched_off_is_named_by_its_wire_and_the_rest_go_low(
    factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = factory.pin(FIRST.contactor, pin_class=StuckPin)
    hardware = build_connector(1, connector(), pin_factory=factory, loop=asyncio.get_running_loop())
    factory.pin(FIRST.lock).state = True  # a coil left on
    stuck.failing = True
    try:
        safety.all_outputs_off()
    finally:
        stuck.failing = False
        hardware.close()

    assert not factory.pin(FIRST.lock).state
    assert [r.getMessage() for r in caplog.records if r.name == "cp_pi.hardware"] == [
        f"could not switch off output contactor.pin (GPIO{FIRST.contactor})"
    ]
