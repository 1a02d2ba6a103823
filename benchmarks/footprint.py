"""Figures 3 and 4: memory and idle CPU of one ``cp-pi run --mock`` process.

The process runs as a user starts it (default settings, bench server on, INFO logging to a
file) against the benchmark's CSMS, which is in this process so that nothing of the central
system is counted. Memory is the resident set size after boot and after the CSMS has driven
10,000 Heartbeats (TriggerMessage) and 1,000 UnlockConnectors through it; idle CPU is the CPU
time the connected process uses while nothing happens.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from benchmarks.common import Child, CsmsWatch, Figure, booted, cp_pi_run
from cp_pi.csms.server import CentralSystem

GOAL_RSS_MB, GOAL_GROWTH_MB, GOAL_IDLE_PERCENT = 45.0, 1.0, 1.0
#: TriggerMessages in flight at once; the charge point handles each CALL in its own task.
WINDOW = 8


async def _heartbeats(watch: CsmsWatch, cp_id: str, count: int) -> None:
    """``count`` TriggerMessage(Heartbeat), a window at a time, each window's Heartbeats awaited.

    Without waiting, the triggers are answered faster than the Heartbeats go out one by one, and
    what would be measured is the peak of that backlog, not what the charge point keeps.
    """
    for first in range(0, count, WINDOW):
        batch = min(WINDOW, count - first)
        expected = len(watch.calls["Heartbeat"]) + batch
        answers = await asyncio.gather(
            *(watch.csms.trigger_message(cp_id, "Heartbeat") for _ in range(batch))
        )
        if any(answer["status"] != "Accepted" for answer in answers):
            raise RuntimeError(f"{cp_id} refused a TriggerMessage: {answers}")
        await watch.received("Heartbeat", expected, timeout=60)


async def _unlocks(watch: CsmsWatch, cp_id: str, count: int) -> None:
    for _ in range(count):
        answer = await watch.csms.unlock_connector(cp_id, 1)
        if answer["status"] != "Unlocked":
            raise RuntimeError(f"{cp_id} answered {answer}")


async def measure(idle_seconds: float, heartbeats: int, unlocks: int) -> list[Figure]:
    cp_id = "bench-footprint"
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-footprint-") as scratch:
        async with CentralSystem(port=0) as csms:
            watch = CsmsWatch(csms)
            child = await Child.start(
                *cp_pi_run(csms.url, cp_id, Path(scratch) / "store"),
                log=Path(scratch) / "cp-pi.log",
            )
            try:
                await booted(watch, cp_id, child)
                rss_boot, pss_boot = child.rss_mb(), child.pss_mb()
                cpu_before = child.cpu_seconds()
                await asyncio.sleep(idle_seconds)
                idle_cpu = child.cpu_seconds() - cpu_before
                idle_percent = 100 * idle_cpu / idle_seconds
                await _heartbeats(watch, cp_id, heartbeats)
                await _unlocks(watch, cp_id, unlocks)
                rss_after = child.rss_mb()
            finally:
                await child.stop()
    growth = rss_after - rss_boot
    return [
        Figure(
            "RSS of cp-pi run --mock after boot",
            f"{rss_boot:.1f} MiB",
            f"<= {GOAL_RSS_MB:.0f} MiB",
            rss_boot <= GOAL_RSS_MB,
        ),
        Figure("  PSS after boot (shared libraries shared out)", f"{pss_boot:.1f} MiB"),
        Figure(
            f"RSS growth after {heartbeats:,} heartbeats + {unlocks:,} unlocks",
            f"{growth:+.2f} MiB (to {rss_after:.1f} MiB)",
            f"< {GOAL_GROWTH_MB:.0f} MiB",
            growth < GOAL_GROWTH_MB,
        ),
        Figure(
            f"idle CPU, connected, over {idle_seconds:g} s",
            f"{idle_cpu:.2f} s of CPU = {idle_percent:.2f} % of one core",
            f"< {GOAL_IDLE_PERCENT:.0f} %",
            idle_percent < GOAL_IDLE_PERCENT,
        ),
    ]
