"""Building a connector's hardware from the configuration: the one place that does it.

``cp-pi run``, the bench, the fleet and ``cp-pi check-wiring`` all build here, so each of them
drives the same parts on the same pins. Each part claims the pins of its roles in the
connector's one inventory (:attr:`~cp_pi.config.ConnectorConfig.pins`) and declares them again
as its own ``pins``; on mock pins the bench rig is built first, since it must claim the pins it
watches before any part does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from cp_pi.config import (
    CONTACTOR_AUX,
    LOCK_FEEDBACK,
    PROXIMITY,
    AdcConfig,
    ConnectorConfig,
    LockKind,
    MeterKind,
    RigConfig,
    connectors_on,
)
from cp_pi.hardware.connector import ConnectorHardware, ConnectorParts
from cp_pi.hardware.contactor import Contactor
from cp_pi.hardware.inputs import AuxContact, LockFeedback, ProximitySensor
from cp_pi.hardware.lock import LockActuator, make_lock
from cp_pi.hardware.meter import EnergyMeter, NoMeter
from cp_pi.hardware.pilot import Adc, ControlPilot, PilotOutput
from cp_pi.hardware.rcd import ResidualCurrentMonitor
from cp_pi.hardware.rig import BenchRig


@dataclass
class Hardware:
    """Every connector of a charge point, and the rig that plays their world on mock pins."""

    connectors: list[ConnectorHardware]
    rig: BenchRig | None
    #: The station's SPI ADC, shared by the connectors' pilots; None when none has one.
    adc: Adc | None = None

    def close(self) -> None:
        for connector in self.connectors:
            connector.close()
        if self.adc is not None:
            self.adc.release()
        if self.rig is not None:
            self.rig.close()


def build_hardware(
    configs: Sequence[ConnectorConfig],
    rig_config: RigConfig,
    *,
    pin_factory: Factory,
    loop: asyncio.AbstractEventLoop,
    prepare: Callable[[BenchRig], None] | None = None,
    adc: AdcConfig | None = None,
) -> Hardware:
    """The rig (on mock pins), then the ADC, then each connector (numbered from 1) with its
    parts.

    ``prepare`` sets the rig's world (a fault, a cable in) before any part reads its pins.
    Mock pins give each connector the parts they have by default (``connectors_on``).
    """
    configs = connectors_on(list(configs), mock_pins=isinstance(pin_factory, MockFactory))
    adc_config = adc or AdcConfig()
    rig = (
        BenchRig(pin_factory, configs, rig_config, loop=loop, adc=adc_config)
        if isinstance(pin_factory, MockFactory)
        else None
    )
    hardware = Hardware([], rig)
    try:
        channels = [channel for config in configs for channel in config.adc_channels.values()]
        if channels:
            hardware.adc = Adc(adc_config.chip, channels, pin_factory=pin_factory)
        if rig is not None and prepare is not None:
            prepare(rig)
        for number, config in enumerate(configs, start=1):
            hardware.connectors.append(
                build_connector(
                    number, config, pin_factory=pin_factory, loop=loop, rig=rig, adc=hardware.adc
                )
            )
    except BaseException:
        hardware.close()
        raise
    return hardware


def build_connector(
    connector_id: int,
    config: ConnectorConfig,
    *,
    pin_factory: Factory,
    loop: asyncio.AbstractEventLoop,
    rig: BenchRig | None = None,
    adc: Adc | None = None,
) -> ConnectorHardware:
    """One connector from its parts; a part that cannot be built gives back the others' pins."""
    with ExitStack() as undo:
        meter = build_meter(connector_id, config, rig)
        undo.callback(meter.close)
        proximity = ProximitySensor(
            PROXIMITY,
            config.pins[PROXIMITY],
            config.proximity_active,
            pin_factory=pin_factory,
            loop=loop,
        )
        undo.callback(proximity.release)
        lock = build_lock(connector_id, config, pin_factory=pin_factory, loop=loop)
        if lock is not None:
            undo.callback(lock.feedback.release)
            undo.callback(lock.release)
        contactor = build_contactor(connector_id, config, pin_factory=pin_factory, loop=loop)
        undo.callback(contactor.release)
        rcd_config = config.rcd_module
        rcd = (
            None
            if rcd_config is None
            else ResidualCurrentMonitor(rcd_config, pin_factory=pin_factory, loop=loop)
        )
        if rcd is not None:
            undo.callback(rcd.release)
        pilot = build_pilot(connector_id, config, pin_factory=pin_factory, loop=loop, adc=adc)
        if pilot is not None:
            undo.callback(pilot.release)
        parts = ConnectorParts(proximity, lock, contactor, meter, rcd, pilot)
        hardware = ConnectorHardware(connector_id, config, parts, loop=loop)
        undo.pop_all()
    return hardware


def build_pilot(
    connector_id: int,
    config: ConnectorConfig,
    *,
    pin_factory: Factory,
    loop: asyncio.AbstractEventLoop,
    adc: Adc | None,
) -> ControlPilot | None:
    """The control pilot's output and read-back (with the PP channel); None for "none"."""
    if config.pilot is None:
        return None
    if adc is None:
        raise ValueError(f"connector {connector_id}: the control pilot needs the station's ADC")
    output = PilotOutput(config.pilot.pwm_pin, pin_factory=pin_factory)
    try:
        return ControlPilot(
            config.pilot,
            output,
            adc,
            pp=config.pp,
            loop=loop,
            name=f"connector {connector_id} pilot",
        )
    except BaseException:
        output.release()
        raise


def build_lock(
    connector_id: int,
    config: ConnectorConfig,
    *,
    pin_factory: Factory,
    loop: asyncio.AbstractEventLoop,
) -> LockActuator | None:
    """The lock actuator with its feedback switch; None for a fixed cable."""
    if config.lock.kind is LockKind.NONE:
        return None
    pins = config.pins
    if LOCK_FEEDBACK not in pins:
        # Without feedback, Unlocked and UnlockFailed cannot be told apart.
        raise ValueError(f"connector {connector_id}: a lock needs feedback_pin")
    feedback = LockFeedback(
        LOCK_FEEDBACK,
        pins[LOCK_FEEDBACK],
        config.lock.feedback_active,
        pin_factory=pin_factory,
        loop=loop,
    )
    try:
        return make_lock(connector_id, config.lock, feedback, pin_factory=pin_factory)
    except BaseException:
        feedback.release()
        raise


def build_contactor(
    connector_id: int,
    config: ConnectorConfig,
    *,
    pin_factory: Factory,
    loop: asyncio.AbstractEventLoop,
) -> Contactor:
    """The contactor with its aux contact, when it has one."""
    pins = config.pins
    aux = (
        AuxContact(
            CONTACTOR_AUX,
            pins[CONTACTOR_AUX],
            config.contactor.feedback_active,
            pin_factory=pin_factory,
            loop=loop,
        )
        if CONTACTOR_AUX in pins
        else None
    )
    try:
        return Contactor(connector_id, config.contactor, aux, pin_factory=pin_factory)
    except BaseException:
        if aux is not None:
            aux.release()
        raise


def build_meter(connector_id: int, config: ConnectorConfig, rig: BenchRig | None) -> EnergyMeter:
    """The meter ``config.meter`` names; a simulated one measures the rig's vehicle."""
    kind = config.meter.resolved(mock_pins=rig is not None)
    if kind is MeterKind.NONE:
        return NoMeter()
    if kind is MeterKind.MODBUS:
        # Imported here: pymodbus costs some 25 ms of start-up and its memory, which a charger
        # without a Modbus meter (and every simulated one) need not pay.
        from cp_pi.hardware.modbus_meter import ModbusMeter

        modbus = ModbusMeter(config.meter)
        modbus.start()
        return modbus
    if rig is None:
        raise ValueError(f"connector {connector_id}: the simulated meter needs the bench rig")
    meter = rig.meter(connector_id, poll_interval=config.meter.poll_interval)
    meter.start()
    return meter
