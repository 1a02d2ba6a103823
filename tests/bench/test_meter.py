"""The bench shows the connector's meter and cuts its bus: ``meter_offline``."""

from __future__ import annotations

from cp_pi.config import ConnectorConfig, LockConfig, MeterConfig, MeterFailure
from tests.bench.conftest import BenchStationFactory
from tests.bench.helpers import bench_client, bench_url
from tests.conftest import FAST_LOCK

IDLE_METER = {
    "energy_wh": 0,
    "power_w": 0.0,
    "current_a": [0.0, 0.0, 0.0],
    "voltage_v": [230.0, 230.0, 230.0],
    "ok": True,
}


async def test_the_state_shows_the_meter_per_phase_and_its_bus_can_be_cut(
    make_bench_station: BenchStationFactory,
) -> None:
    async with make_bench_station() as station, bench_client(bench_url(station)) as client:
        await client.connector_reaches(meter=IDLE_METER, status="Available")

        ack = await client.command(op="fault", connector=1, fault="meter_offline")

        assert ack == {"type": "ack", "op": "fault"}
        offline = IDLE_METER | {"ok": False}
        await client.connector_reaches(
            meter=offline, fault="meter_offline", status="Available", error_code="PowerMeterFailure"
        )
        await client.command(op="fault", connector=1, fault="none")
        await client.connector_reaches(meter=IDLE_METER, error_code="NoError")


async def test_a_meter_that_must_answer_faults_the_connector_while_offline(
    make_bench_station: BenchStationFactory,
) -> None:
    meter = MeterConfig(on_failure=MeterFailure.STOP)
    connectors = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), meter=meter)]
    async with (
        make_bench_station(connectors=connectors) as station,
        bench_client(bench_url(station)) as client,
    ):
        await client.command(op="fault", connector=1, fault="meter_offline")
        await client.connector_reaches(status="Faulted", error_code="PowerMeterFailure")
        await client.command(op="plug", connector=1)
        await client.command(op="swipe", connector=1, id_tag="TAG1")  # refused while Faulted
        await client.command(op="fault", connector=1, fault="none")
        await client.connector_reaches(status="Preparing", transaction_id=None)
