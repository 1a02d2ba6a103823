"""kill -9 keeps the Local Authorization List and the reservations: a real process, really killed.

As in test_crash_safety: `cp-pi run --mock` against the embedded central system, SIGKILLed, then
started again on the same data directory. A list update cut short by the kill is there whole or
not at all: the store file, read after the kill, holds either the old list with its version or
the new one with its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cp_pi.csms.server import CentralSystem
from cp_pi.store import Store
from tests.test_crash_safety import CP, charge_point_process


def entries(prefix: str, count: int) -> list[dict[str, object]]:
    return [{"idTag": f"{prefix}{i}", "idTagInfo": {"status": "Accepted"}} for i in range(count)]


async def test_a_list_and_a_reservation_survive_sigkill(tmp_path: Path) -> None:
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    async with CentralSystem(port=0) as csms:
        async with charge_point_process(csms, tmp_path):
            assert await csms.send_local_list(CP, 3, entries("OLD", 5)) == {"status": "Accepted"}
            start = len(csms.frames)
            answer = await csms.reserve_now(CP, 9, 1, "HOLDER", expiry)
            assert answer == {"status": "Accepted"}
            await csms.wait_for_call(
                CP, "StatusNotification", where=lambda p: p["status"] == "Reserved", after=start
            )
        # SIGKILLed on leaving the block; started again:
        start = len(csms.frames)
        async with charge_point_process(csms, tmp_path):
            await csms.wait_for_call(
                CP,
                "StatusNotification",
                where=lambda p: p["connectorId"] == 1 and p["status"] == "Reserved",
                after=start,
            )
            assert await csms.get_local_list_version(CP) == {"listVersion": 3}
            assert await csms.remote_start(CP, "SOMEONE-ELSE", 1) == {"status": "Rejected"}
            assert await csms.cancel_reservation(CP, 9) == {"status": "Accepted"}


async def test_an_update_cut_by_sigkill_is_all_or_nothing(tmp_path: Path) -> None:
    random.seed(3)
    async with CentralSystem(port=0) as csms:
        async with charge_point_process(csms, tmp_path):
            assert await csms.send_local_list(CP, 1, entries("OLD", 80)) == {"status": "Accepted"}
        for version in (2, 3):
            async with charge_point_process(csms, tmp_path):
                update = asyncio.create_task(
                    csms.send_local_list(CP, version, entries(f"NEW{version}-", 100))
                )
                await asyncio.sleep(random.uniform(0, 0.03))  # a random moment, not a wait
            update.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, TimeoutError):
                await update
            store = Store.open(tmp_path)
            try:
                kept = int(store.settings("local_auth_list")["version"])
                size = store.local_list_size()
                first = store.local_list_entry("OLD0" if kept == 1 else f"NEW{kept}-0")
            finally:
                store.close()
            assert (kept, size) in {(1, 80), (version - 1, 100), (version, 100)}
            assert first is not None
