"""The bench's residual-current fault: the rig's module trips, the charge point faults."""

from __future__ import annotations

from cp_pi.config import ConnectorConfig, LockConfig
from tests.bench.conftest import BenchStationFactory
from tests.bench.helpers import bench_client, bench_url
from tests.conftest import FAST_LOCK


async def test_the_rcd_trip_fault_trips_the_module_and_faults_the_connector(
    make_bench_station: BenchStationFactory,
) -> None:
    # mock pins give every connector the module by default
    async with make_bench_station() as station, bench_client(bench_url(station)) as client:
        await client.connector_reaches(rcd="ok", status="Available")

        ack = await client.command(op="fault", connector=1, fault="rcd_trip")

        assert ack == {"type": "ack", "op": "fault"}
        await client.connector_reaches(rcd="tripped", fault="rcd_trip", status="Faulted")
        await client.command(op="fault", connector=1, fault="none")
        await client.connector_reaches(rcd="ok", status="Available")  # no cable was in


async def test_the_rcd_trip_fault_needs_a_monitor(
    make_bench_station: BenchStationFactory,
) -> None:
    connectors = [ConnectorConfig(lock=LockConfig(**FAST_LOCK), rcd="none")]
    async with (
        make_bench_station(connectors=connectors) as station,
        bench_client(bench_url(station)) as client,
    ):
        await client.connector_reaches(rcd=None)

        reply = await client.command(op="fault", connector=1, fault="rcd_trip")

        assert reply["type"] == "error"
        assert "connector 1 has no residual-current monitor" in reply["message"]
        await client.connector_reaches(fault="none")
