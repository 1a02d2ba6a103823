"""`cp-pi check-wiring` reads each connector's meter once: its model and register, or what to
check on its bus."""

from __future__ import annotations

from pathlib import Path

from cp_pi.config import ConnectorConfig, LockConfig, MeterConfig, MeterKind, MeterModel
from cp_pi.hardware.meter_maps import SDM630
from cp_pi.hardware.rig import RigFault
from tests.conftest import FAST_LOCK, fast_settings
from tests.hardware.modbus_server import meter_config, running_sdm
from tests.wiring.test_check import check


def with_meter(tmp_path: Path, meter: MeterConfig) -> list[ConnectorConfig]:
    return [ConnectorConfig(lock=LockConfig(**FAST_LOCK), meter=meter)]


async def test_the_simulated_meter_is_read_and_its_cut_bus_fails(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", None)

    sound = await check(settings)
    cut = await check(settings, fault=RigFault.METER_OFFLINE)

    assert "connector 1: meter: simulated meter of the bench rig: 0 Wh" in sound.lines
    assert sound.verdicts["meter answers"] == "pass"
    assert cut.verdicts["meter answers"] == "FAIL"
    assert "meter_offline" in cut.advice("meter answers")
    assert cut.status == 1


async def test_a_modbus_meter_is_read_once_and_a_silent_one_says_what_to_check(
    tmp_path: Path,
) -> None:
    async with running_sdm() as sdm:
        await sdm.set_phases(SDM630, volts=230.0, amps=0.0, watts=0.0, kwh=1234.567)
        settings = fast_settings(
            tmp_path / "data", None, connectors=with_meter(tmp_path, meter_config(sdm))
        )
        answering = await check(settings)
        await sdm.stop()
        silent = await check(settings)

    where = f"SDM630 at Modbus address 3, Modbus TCP 127.0.0.1:{sdm.port}"
    assert f"connector 1: meter: {where}: 1234567 Wh" in answering.lines
    assert answering.verdicts["meter answers"] == "pass"
    assert silent.verdicts["meter answers"] == "FAIL"
    assert silent.advice("meter answers") == (
        f"no sane reading from the {where}: check that 127.0.0.1:{sdm.port} is reachable from"
        " the Pi (network cable, gateway powered), and that the meter behind it answers Modbus"
        " address 3"
    )
    assert silent.status == 1


async def test_a_meter_on_the_pi_uart_names_its_pins_and_settings(tmp_path: Path) -> None:
    meter = MeterConfig(
        kind=MeterKind.MODBUS, model=MeterModel.SDM120, port="/dev/serial0", unit=7, timeout=0.2
    )
    settings = fast_settings(tmp_path / "data", None, connectors=with_meter(tmp_path, meter))

    run = await check(settings)

    advice = run.advice("meter answers")
    assert advice.startswith(
        "no sane reading from the SDM120 at Modbus address 7 on /dev/serial0 (9600 baud,"
        " parity N): check the RS-485 pair (A to A, B to B"
    )
    assert "the transceiver on the Pi's UART (GPIO14 / pin 8 TXD, GPIO15 / pin 10 RXD)" in advice
    assert "meter.unit (7), meter.baudrate (9600) and meter.parity (N)" in advice
