"""A broken SD card must not stop a charge point: it charges from memory and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

from cp_pi.csms.server import CentralSystem
from cp_pi.store import FILE_NAME
from tests.conftest import CP_ID, StationFactory
from tests.ocpp16.helpers import call_index, calls, mark, status_reached
from tests.ocpp16.test_unlock_connector import start_charging


async def test_a_corrupted_store_file_is_left_alone_and_charging_goes_on(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"this is not an SQLite database" * 100
    (data / FILE_NAME).write_bytes(garbage)
    start = mark(csms)
    async with make_station() as station:
        await status_reached(csms, "Available", after=start, connector=0, error_code="OtherError")
        assert station.store.degraded is not None
        transaction_id = await start_charging(station, csms)
        await csms.remote_stop(CP_ID, transaction_id)
        await call_index(csms, "StopTransaction", after=start, reason="Remote")
    assert (data / FILE_NAME).read_bytes() == garbage


async def test_writes_refused_mid_run_move_the_store_to_memory_without_losing_the_charge(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station() as station:
        # SQLite refuses every write from now on, as on a filesystem gone read-only.
        station.store._db.execute("PRAGMA query_only = ON")
        start = mark(csms)
        transaction_id = await start_charging(station, csms)
        assert station.store.degraded is not None
        await status_reached(csms, "Available", after=start, connector=0, error_code="OtherError")
        await csms.remote_stop(CP_ID, transaction_id)
        await call_index(csms, "StopTransaction", after=start, reason="Remote")


async def test_a_data_directory_deleted_mid_charge_is_reported_and_the_charge_delivered(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    async with make_station() as station:
        transaction_id = await start_charging(station, csms)
        start = mark(csms)
        shutil.rmtree(tmp_path / "data")

        await csms.remote_stop(CP_ID, transaction_id)

        await call_index(csms, "StopTransaction", after=start, reason="Remote")
        assert station.store.degraded is not None
        assert "deleted" in station.store.degraded
        await status_reached(csms, "Available", after=start, connector=0, error_code="OtherError")
        (status,) = [
            p for p in calls(csms, "StatusNotification", after=start) if p["connectorId"] == 0
        ]
        assert status["info"] == "message store in memory"
