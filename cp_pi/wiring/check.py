"""`cp-pi check-wiring`: the installer's self-test at the charger, the last bring-up step.

It prints the pin map it uses, reads every input and each energy meter, and once the person at
the charger agrees, drives each connector's lock and contactor (:mod:`cp_pi.wiring.trial`) and
prints a pass/fail table. Exit status: 0 when every check passed; 1 when one failed or did not
run, or the GPIO cannot be opened or there is none (no GPIO chip and no ``--mock``: a check on
mock pins nobody asked for would pass and prove nothing); 2 when it was started wrongly (the
service holds the pins, nobody to confirm and no ``--yes``, a rig fault without mock pins).

It never drives beside the service: both hold the :class:`~cp_pi.runlock.RunLock`. On mock pins
the bench rig stands in for the charger, and a rig fault shows each failure path without
breaking a real charger.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from cp_pi.config import ConfigError, ConnectorConfig, Settings, connectors_on
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.factory import HardwareUnavailable, gpio_chip_found, make_pin_factory
from cp_pi.hardware.inputs import PinReadError
from cp_pi.hardware.parts import build_hardware
from cp_pi.hardware.rig import BenchRig, RigFault
from cp_pi.runlock import AlreadyRunning, RunLock
from cp_pi.wiring.meter_check import meter_checks
from cp_pi.wiring.pilot_check import pilot_checks
from cp_pi.wiring.pin_map import Header, input_lines, pin_map_lines
from cp_pi.wiring.trial import Check, Trial, Verdict

QUESTION = "Drive the lock and the contactor now? [y/N] "

PASSED, FAILED, MISUSED = 0, 1, 2


async def check_wiring(
    settings: Settings,
    *,
    assume_yes: bool,
    fault: RigFault | None,
    out: TextIO,
    ask: Callable[[str], bool] | None,
    pin_factory: Factory | None = None,
    dev: Path = Path("/dev"),
) -> int:
    """Run the self-test and return the exit status.

    ``ask`` puts the question to a person (None: there is nobody to ask). ``pin_factory`` is
    for tests that watch the pins; the caller keeps it open. Otherwise the factory named in the
    settings is opened and closed here; with none named, ``dev`` must hold a GPIO chip.
    """

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    if pin_factory is None and settings.pin_factory is None and not gpio_chip_found(dev):
        say(
            f"cp-pi: no GPIO chip found ({dev}/gpiochip*): there is no wiring to check on this"
            " machine; on a Pi, see that the GPIO driver is loaded; --mock checks the simulated"
            " rig instead"
        )
        return FAILED
    confirm = (lambda _question: True) if assume_yes else ask
    if confirm is None:
        say("cp-pi: no terminal to confirm driving the lock and the contactor: pass --yes")
        return MISUSED
    run_lock = RunLock(settings.data_dir)
    try:
        run_lock.acquire()
    except AlreadyRunning as error:
        say(f"{error}: stop the service first: sudo systemctl stop cp-pi")
        return MISUSED
    except OSError as error:
        say(
            f"cp-pi: cannot open {run_lock.path} ({error.strerror}), so cannot tell whether the"
            " service is running: run check-wiring as root or as the cp-pi user"
        )
        return MISUSED
    try:
        if pin_factory is not None:
            return await _check(settings, pin_factory, fault, confirm, say)
        try:
            factory = make_pin_factory(settings.pin_factory)
        except HardwareUnavailable as error:
            say(f"cp-pi: {error}")
            return FAILED
        try:
            return await _check(settings, factory, fault, confirm, say)
        finally:
            factory.close()
    finally:
        run_lock.release()


async def _check(
    settings: Settings,
    factory: Factory,
    fault: RigFault | None,
    confirm: Callable[[str], bool],
    say: Callable[[str], None],
) -> int:
    rig_fault = fault if fault is not RigFault.NONE else None
    on_mock_pins = isinstance(factory, MockFactory)
    if rig_fault is not None and not on_mock_pins:
        say("cp-pi: --fault breaks the simulated rig: it needs mock pins (--mock)")
        return MISUSED
    try:
        configs = connectors_on(settings.connectors, mock_pins=on_mock_pins)
    except ConfigError as error:
        say(f"cp-pi: config error: {error}")
        return MISUSED
    if rig_fault is RigFault.RCD_TRIP and any(c.rcd_module is None for c in configs):
        say('cp-pi: --fault rcd_trip needs a residual-current monitor: rcd is "none"')
        return MISUSED
    loop = asyncio.get_running_loop()

    def stand_in(rig: BenchRig) -> None:
        say("mock pins: the bench rig stands in for the charger")
        if rig_fault is not None:
            say(f"rig fault on every connector: {rig_fault}")
            for number in range(1, len(settings.connectors) + 1):
                rig.set_fault(number, rig_fault)

    built = build_hardware(
        configs, settings.rig, pin_factory=factory, loop=loop, prepare=stand_in, adc=settings.adc
    )
    hardware = built.connectors
    try:
        return await _test(
            configs, hardware, Header(factory.board_info), confirm, say, on_mock_pins
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        for connector in hardware:
            connector.outputs_off()
        say("\ninterrupted: every output is off; a lock may still be engaged")
        raise
    finally:
        built.close()


async def _test(
    configs: list[ConnectorConfig],
    hardware: list[ConnectorHardware],
    where: Header,
    confirm: Callable[[str], bool],
    say: Callable[[str], None],
    on_mock_pins: bool,
) -> int:
    checks: list[Check] = []
    connectors = list(zip(hardware, configs, strict=True))
    for connector, config in connectors:
        say(f"\nconnector {connector.connector_id} pin map:")
        for line in pin_map_lines(config, where):
            say(line)
    for connector, config in connectors:
        say(f"\nconnector {connector.connector_id} inputs now:")
        snapshot = connector.snapshot()
        if snapshot.read_error:
            say("  unreadable: see the error above")
            checks.append(Check(connector.connector_id, "inputs readable", Verdict.FAIL))
        else:
            for line in input_lines(config, snapshot, where):
                say(line)
    for connector, config in connectors:
        checks += await meter_checks(
            connector, config, mock_pins=on_mock_pins, where=where, say=say
        )
    for connector, config in connectors:
        checks += await pilot_checks(connector, config, where=where, say=say)
    for connector, config in connectors:
        checks += await _residual_current_checks(connector, config, where, say)
    say("\nNo vehicle may be connected: closing the contactor makes the socket live.")
    if confirm(QUESTION):
        for connector, config in connectors:
            trial = Trial(connector, config, where, say)
            await trial.run()
            checks += trial.checks
    else:
        checks += [
            Check(c.connector_id, "lock and contactor", Verdict.NOT_RUN, "not confirmed")
            for c in hardware
        ]
    return _report(checks, say, on_mock_pins)


async def _residual_current_checks(
    connector: ConnectorHardware,
    config: ConnectorConfig,
    where: Header,
    say: Callable[[str], None],
) -> list[Check]:
    """The residual-current monitor reads healthy, and trips and recovers on its test input
    (harmless: the contactor is open)."""
    rcd, pins = connector.parts.rcd, config.rcd_module
    if rcd is None or pins is None:
        return []
    number, trip = connector.connector_id, where(pins.trip_pin)
    try:
        healthy = not rcd.tripped
    except PinReadError as error:
        say(f"  {error}")
        healthy = False
    checks = [
        Check(number, "residual current healthy", Verdict.PASS)
        if healthy
        else Check(
            number,
            "residual current healthy",
            Verdict.FAIL,
            f"{trip} reads tripped with no vehicle: check the module's supply, its reset, the"
            f" trip wire to {trip} and its pull-up, and that rcd.trip_active"
            f" ({pins.trip_active}) is the level the module gives when tripped",
        )
    ]
    if pins.test_pin is None or not healthy:
        return checks
    say(f"connector {number}: firing the residual current test output")
    passed = await connector.rcd_self_test()
    test = where(pins.test_pin)
    checks.append(
        Check(number, "residual current self-test", Verdict.PASS)
        if passed
        else Check(
            number,
            "residual current self-test",
            Verdict.FAIL,
            f"the module did not trip and recover on its test input (see the log line above):"
            f" check the wire from {test} to the module's test input (and its driver), and the"
            f" trip wire to {trip}",
        )
    )
    return checks


def _report(checks: list[Check], say: Callable[[str], None], on_mock_pins: bool) -> int:
    width = max([len("check"), *(len(check.name) for check in checks)])
    say(f"\nresults:\n  {'connector':<9}  {'check':<{width}}  result")
    for check in checks:
        say(f"  {check.connector_id:<9}  {check.name:<{width}}  {check.verdict}")
        if check.advice:
            say(f"  {'':<9}  -> {check.advice}")
    failed = sum(check.verdict is Verdict.FAIL for check in checks)
    not_run = sum(check.verdict is Verdict.NOT_RUN for check in checks)
    if failed or not_run:
        say(
            f"\n{failed} failed, {not_run} not run, of {len(checks)} checks: the charge point"
            " must not go into service; fix what is listed and run cp-pi check-wiring again"
        )
        return FAILED
    # On mock pins the rig passed, not a charger: the line says so, lest it be taken for one.
    say(f"\nall {len(checks)} checks passed" + (" on mock pins" if on_mock_pins else ""))
    return PASSED


def run_check_wiring(settings: Settings, *, assume_yes: bool, fault: RigFault | None) -> int:
    """The command line's entry: asks on the terminal when there is one; Ctrl+C gives 130."""
    ask = _ask_terminal if sys.stdin.isatty() else None
    check = check_wiring(settings, assume_yes=assume_yes, fault=fault, out=sys.stdout, ask=ask)
    try:
        return asyncio.run(_cancelled_by_sigterm(check))
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM


async def _cancelled_by_sigterm(check: Coroutine[Any, Any, int]) -> int:
    """SIGTERM ends the check the way Ctrl+C does, so its clean-up switches every output off."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await check
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _ask_terminal(question: str) -> bool:
    # asyncio.run turns the first Ctrl+C into a cancellation of its task, which a blocking
    # input() never notices; while the question waits, Ctrl+C must interrupt the prompt itself.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False
    finally:
        signal.signal(signal.SIGINT, previous)
