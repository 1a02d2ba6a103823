"""Figures 3 and 4: memory and idle CPU of one ``cp-pi run --mock`` process.

The process runs as a user starts it (default settings, bench server on, INFO logging to a
file) against the benchmark's CSMS, which is in this process so that nothing of the central
system is counted. Memory is the resident set size after boot and after the CSMS has driven
10,000 Heartbeats (TriggerMessage) and 1,000 UnlockConnectors through it; idle CPU is the CPU
time the connected process uses while nothing happens. Beside it, the floor: a process that
imports the libraries cp-pi is built on and nothing of cp-pi (:mod:`benchmarks.dependency_floor`).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from benchmarks.common import Child, CsmsWatch, Figure, booted, cp_pi_run, module
from cp_pi.csms.server import CentralSystem

GOAL_RSS_MB, GOAL_GROWTH_MB, GOAL_IDLE_PERCENT = 45.0, 1.0, 1.0


async def _heartbeats(watch: CsmsWatch, cp_id: str, count: int) -> None:
    """``count`` TriggerMessage(Heartbeat), one at a time, each Heartbeat awaited.

    The charge point answers a TriggerMessage at once and shares one queued Heartbeat among the
    triggers that arrive while it waits, so a burst of triggers would send far fewer Heartbeats
    than it asked for; one at a time, every trigger makes one Heartbeat.
    """
    for _ in range(count):
        expected = len(watch.calls["Heartbeat"]) + 1
        answer = await watch.csms.trigger_message(cp_id, "Heartbeat")
        if answer["status"] != "Accepted":
            raise RuntimeError(f"{cp_id} refused a TriggerMessage: {answer}")
        await watch.received("Heartbeat", expected, timeout=60)


async def _unlocks(watch: CsmsWatch, cp_id: str, count: int) -> None:
    for _ in range(count):
        answer = await watch.csms.unlock_connector(cp_id, 1)
        if answer["status"] != "Unlocked":
            raise RuntimeError(f"{cp_id} answered {answer}")


async def _floor_mb(scratch: Path) -> float:
    """RSS of the dependencies alone, imported, at rest."""
    floor = await Child.start(
        *module("benchmarks.dependency_floor"), log=scratch / "floor.log", control=True
    )
    try:
        if await floor.ask("ready?") != "ready":
            raise floor.failure("the dependency floor did not start")
        return floor.rss_mb()
    finally:
        await floor.stop()


async def measure(idle_seconds: float, heartbeats: int, unlocks: int) -> list[Figure]:
    cp_id = "bench-footprint"
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-footprint-") as scratch:
        rss_floor = await _floor_mb(Path(scratch))
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
        Figure("  floor: the libraries cp-pi is built on, imported alone", f"{rss_floor:.1f} MiB"),
        Figure("  cp-pi's own share (RSS after boot - floor)", f"{rss_boot - rss_floor:.1f} MiB"),
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
