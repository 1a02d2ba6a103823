"""`cp-pi fleet` as a central system developer sees it: many charge points at one server."""

from __future__ import annotations

import asyncio
import io
import os
import resource
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cp_pi.commands.fleet import FleetOptionsError, charge_point_ids, run_fleet
from cp_pi.csms.server import CentralSystem

COUNT = 20
IDS = charge_point_ids("P", COUNT)


@dataclass
class RunningFleet:
    task: asyncio.Task[int]
    out: io.StringIO

    async def stop_with(self, signum: signal.Signals) -> int:
        """What Ctrl+C (SIGINT) or systemd (SIGTERM) does to the process; the exit status."""
        os.kill(os.getpid(), signum)
        return await asyncio.wait_for(self.task, timeout=60)

    def final_summary(self) -> str:
        (line,) = [line for line in self.out.getvalue().splitlines() if line.startswith("final")]
        return line


@asynccontextmanager
async def fleet(csms: CentralSystem, tmp_path: Path, **options: Any) -> AsyncIterator[RunningFleet]:
    out = io.StringIO()
    options = {"id_prefix": "P", "data_dir": tmp_path, "out": out, **options}
    task = asyncio.create_task(run_fleet(options.pop("count", COUNT), csms_url=csms.url, **options))
    try:
        yield RunningFleet(task, out)
    finally:
        task.cancel()  # a test that failed before stopping it
        await asyncio.gather(task, return_exceptions=True)


async def each_sends(csms: CentralSystem, action: str, ids: list[str]) -> None:
    await asyncio.gather(*(csms.wait_for_call(cp_id, action, timeout=60) for cp_id in ids))


async def test_every_charge_point_boots_then_sigterm_stops_them_cleanly(
    csms: CentralSystem, tmp_path: Path
) -> None:
    async with fleet(csms, tmp_path) as running:
        await each_sends(csms, "BootNotification", IDS)
        await each_sends(csms, "StatusNotification", IDS)

        assert await running.stop_with(signal.SIGTERM) == 0

    assert f"booted {COUNT}/{COUNT}  connected 0" in running.final_summary()
    assert "errors 0" in running.final_summary()
    for cp_id in IDS:  # each kept its own store under the data directory
        assert (tmp_path / cp_id / "cp-pi.sqlite3").is_file()


async def test_with_the_charge_pattern_transactions_start_and_stop_at_the_csms(
    csms: CentralSystem, tmp_path: Path
) -> None:
    async with fleet(csms, tmp_path, pattern="charge", charge_time=0.2, idle_time=0.1) as running:
        await each_sends(csms, "StartTransaction", IDS)
        await each_sends(csms, "StopTransaction", IDS)

        assert await running.stop_with(signal.SIGINT) == 0

    # A clean stop ends the sessions under way: no transaction is left open at the CSMS.
    transactions = list(csms.transactions.values())
    assert {t.charge_point_id for t in transactions} == set(IDS)
    assert [t for t in transactions if t.stopped_at is None] == []
    assert {t.reason for t in transactions} <= {"Local"}
    started = len(transactions)
    assert f"transactions {started} started, {started} stopped" in running.final_summary()


async def test_rejected_boots_are_counted_as_errors(csms: CentralSystem, tmp_path: Path) -> None:
    csms.boot_status = "Rejected"
    ids = charge_point_ids("P", 3)
    async with fleet(csms, tmp_path, count=3) as running:
        await each_sends(csms, "BootNotification", ids)

        assert await running.stop_with(signal.SIGTERM) == 1

    assert "booted 0/3" in running.final_summary()
    assert "errors 0" not in running.final_summary()


async def test_a_low_limit_on_open_files_is_raised_as_far_as_the_fleet_needs(
    csms: CentralSystem, tmp_path: Path
) -> None:
    count = 40  # about 5 files each: far more than the limit set here
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (count * 2, hard))
    try:
        async with fleet(csms, tmp_path, count=count, rate=200) as running:
            await each_sends(csms, "BootNotification", charge_point_ids("P", count))

            assert await running.stop_with(signal.SIGTERM) == 0
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_duration_ends_the_run_by_itself(csms: CentralSystem, tmp_path: Path) -> None:
    async with fleet(csms, tmp_path, count=2, duration=0.5) as running:
        assert await asyncio.wait_for(running.task, timeout=60) == 0


def test_ids_are_numbered_from_one_and_sort_in_start_order() -> None:
    assert charge_point_ids("P", 3) == ["P-0001", "P-0002", "P-0003"]
    assert charge_point_ids("P", 12_000)[-1] == "P-12000"
    assert sorted(charge_point_ids("P", 12_000)) == charge_point_ids("P", 12_000)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"count": 0}, "--count"),
        ({"id_prefix": "two words"}, "--id-prefix"),
        ({"id_prefix": "x" * 44}, "--id-prefix"),
        ({"rate": 0}, "--rate"),
        ({"duration": -1}, "--duration"),
        ({"csms_url": "http://csms.example"}, "--csms-url"),
    ],
)
async def test_an_option_that_cannot_work_is_refused_by_its_name(
    tmp_path: Path, options: dict[str, Any], named: str
) -> None:
    arguments = {"count": 1, "data_dir": tmp_path, **options}
    with pytest.raises(FleetOptionsError, match=named):
        await run_fleet(arguments.pop("count"), **arguments)
