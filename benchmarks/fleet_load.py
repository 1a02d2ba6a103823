"""Figure 5: ``cp-pi fleet`` with N charge points in one process against the CSMS in another.

The CSMS (this process) counts distinct BootNotifications from the moment the fleet process is
started, watches every charge point's heartbeats against the interval it gave them, and, once all
have booted, sends UnlockConnector to charge points picked at random at a steady rate while the
rest of the fleet goes on heartbeating. Locks are open (no transaction), so no drive is in the
round trip: what is measured is the fleet's responsiveness under its own load.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from benchmarks.common import Child, CsmsWatch, Figure, median, module, ms, p99
from cp_pi.commands.fleet import DEFAULT_RATE, charge_point_ids
from cp_pi.csms.server import CentralSystem

GOAL_BOOT, GOAL_UNLOCK_P99, GOAL_HEARTBEAT_LATE = 60.0, 0.100, 1.0


@dataclass(frozen=True)
class Plan:
    count: int
    #: HeartbeatInterval the CSMS gives in its BootNotification answer, in seconds.
    heartbeat_interval: int
    #: How long the unlock load and the heartbeat watch go on after the last boot.
    observe_seconds: float
    unlocks_per_second: float = 20.0
    rate: float = DEFAULT_RATE


def _late_heartbeats(watch: CsmsWatch, interval: int, until: float) -> tuple[list[float], int]:
    """Every gap between a charge point's boot and heartbeats, minus the interval; and how many
    charge points had gone silent for more than twice the interval when the watch ended."""
    seen: dict[str, list[float]] = defaultdict(list)
    for cp_id, at in [*watch.calls["BootNotification"], *watch.calls["Heartbeat"]]:
        seen[cp_id].append(at)
    late: list[float] = []
    silent = 0
    for times in seen.values():
        times.sort()
        late += [later - earlier - interval for earlier, later in pairwise(times)]
        silent += until - times[-1] > 2 * interval
    return late, silent


async def _unlock_load(watch: CsmsWatch, ids: list[str], plan: Plan) -> list[str]:
    """Unlocks at a steady rate for the observation time; the answers, in order of sending."""
    loop = asyncio.get_running_loop()
    requests = []
    end = loop.time() + plan.observe_seconds
    while loop.time() < end:
        request = watch.csms.unlock_connector(random.choice(ids), 1, timeout=30)
        requests.append(asyncio.ensure_future(request))
        await asyncio.sleep(1 / plan.unlocks_per_second)
    answers = await asyncio.gather(*requests, return_exceptions=True)
    return [a["status"] if isinstance(a, dict) else type(a).__name__ for a in answers]


async def measure(plan: Plan) -> list[Figure]:
    ids = charge_point_ids("fleet", plan.count)
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-fleet-") as scratch:
        async with CentralSystem(port=0, heartbeat_interval=plan.heartbeat_interval) as csms:
            watch = CsmsWatch(csms)
            loop = asyncio.get_running_loop()
            started = loop.time()
            child = await Child.start(
                *module(
                    "cp_pi",
                    "fleet",
                    *("--count", str(plan.count), "--rate", str(plan.rate)),
                    *("--csms-url", csms.url, "--id-prefix", "fleet"),
                ),
                log=Path(scratch) / "fleet.log",
            )
            try:
                await watch.received("BootNotification", 1, timeout=60)
                first_rss, first_booted = child.rss_mb(), _booted(watch)
                try:
                    await watch.until(lambda: _booted(watch) >= plan.count, timeout=2 * GOAL_BOOT)
                except TimeoutError:
                    raise child.failure(f"{_booted(watch)} of {plan.count} booted") from None
                boot_seconds = max(at for _, at in watch.calls["BootNotification"]) - started
                cpu_fleet, cpu_csms = child.cpu_seconds(), time.process_time()
                window_start = loop.time()
                answers = await _unlock_load(watch, ids, plan)
                window = loop.time() - window_start
                cpu_fleet = (child.cpu_seconds() - cpu_fleet) / window
                cpu_csms = (time.process_time() - cpu_csms) / window
                rss = child.rss_mb()
                late, silent = _late_heartbeats(watch, plan.heartbeat_interval, loop.time())
            finally:
                stopping = loop.time()
                status = await child.stop()
                stop_seconds = loop.time() - stopping
    round_trips = watch.round_trips["UnlockConnector"]
    failed = [answer for answer in answers if answer != "Unlocked"]
    marginal = (rss - first_rss) / max(plan.count - first_booted, 1)
    n = plan.count
    return [
        Figure(
            f"fleet of {n:,}: all booted after",
            f"{boot_seconds:.1f} s (ramp {n / plan.rate:.0f} s)",
            f"<= {GOAL_BOOT:.0f} s",
            boot_seconds <= GOAL_BOOT,
        ),
        Figure(
            f"  heartbeat lateness, interval {plan.heartbeat_interval} s (p99 / max)",
            f"{p99(late):.2f} s / {max(late):.2f} s, {silent} silent",
            f"p99 <= {GOAL_HEARTBEAT_LATE:.0f} s, 0 silent",
            p99(late) <= GOAL_HEARTBEAT_LATE and silent == 0,
        ),
        Figure(
            f"  unlock under load, {len(round_trips)} at {plan.unlocks_per_second:g}/s (p99)",
            ms(p99(round_trips)),
            f"< {ms(GOAL_UNLOCK_P99)}",
            p99(round_trips) < GOAL_UNLOCK_P99 and not failed,
        ),
        Figure("  unlock under load (median)", ms(median(round_trips))),
        Figure("  unlocks not answered Unlocked", str(len(failed))),
        Figure("  memory per charge point (RSS growth / stations)", f"{marginal * 1024:.0f} KiB"),
        Figure("  fleet process RSS", f"{rss:.0f} MiB"),
        Figure(
            "  CPU while observed: fleet / CSMS", f"{cpu_fleet:.0%} / {cpu_csms:.0%} of one core"
        ),
        Figure("  SIGTERM to exit (status)", f"{stop_seconds:.1f} s ({status})"),
    ]


def _booted(watch: CsmsWatch) -> int:
    return len(watch.senders["BootNotification"])
