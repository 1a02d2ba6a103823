"""Figure 1: what cp-pi adds to an UnlockConnector round trip, against the stack's floor.

The CSMS (this process) and the charge points (child processes) talk over loopback; each round
trip is timed at the CSMS from the CALL leaving to the CALLRESULT arriving. Three charge points:

* cp-pi with a drive: the lock is engaged before each request, so the real path runs (plan,
  feedback, an awaited pulse, settle, feedback again); the configured drive and settle times
  are subtracted, what is left is cp-pi's overhead;
* cp-pi without a drive: the lock is already open, so the answer needs no pulse;
* the bare ``ocpp`` charge point, which answers ``Unlocked`` at once, with the schema
  validation cp-pi uses and with the package's default (a thread pool).

The paths without a drive are measured in turns, one request to each charge point per round,
so that a change in the machine's load between two series cannot pass for a difference.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Child, CsmsWatch, Figure, booted, median, module, ms, p99
from benchmarks.unlock_target import LOCK
from cp_pi.csms.server import CentralSystem

WARM_UP = 20
GOAL_MEDIAN, GOAL_P99, GOAL_RATIO = 0.003, 0.010, 1.5
CP_PI, BARE, BARE_THREADS = "bench-unlock", "bench-bare", "bench-bare-threads"


async def _round_trip(watch: CsmsWatch, cp_id: str) -> float:
    """One UnlockConnector; its round trip as the CSMS's frame record timed it."""
    answer = await watch.csms.unlock_connector(cp_id, 1)
    if answer["status"] != "Unlocked":
        raise RuntimeError(f"{cp_id} answered {answer}")
    return watch.round_trips["UnlockConnector"][-1]


async def _driven(watch: CsmsWatch, count: int, target: Child) -> tuple[list[float], list[float]]:
    """Round trips on a lock engaged beforehand, and how long each unlock pulse lasted."""
    round_trips: list[float] = []
    pulses: list[float] = []
    for _ in range(WARM_UP + count):
        reply = await target.ask("arm")
        if reply != "armed":
            raise target.failure(f"the lock could not be armed: {reply!r}")
        round_trips.append(await _round_trip(watch, CP_PI))
        pulses.append(float(await target.ask("pulse")))
    return round_trips[WARM_UP:], pulses[WARM_UP:]


async def _in_turns(watch: CsmsWatch, count: int, cp_ids: list[str]) -> dict[str, list[float]]:
    """Round trips to each charge point in turn, the locks left open."""
    round_trips: dict[str, list[float]] = {cp_id: [] for cp_id in cp_ids}
    for _ in range(WARM_UP + count):
        for cp_id in cp_ids:
            round_trips[cp_id].append(await _round_trip(watch, cp_id))
    return {cp_id: times[WARM_UP:] for cp_id, times in round_trips.items()}


async def _start(watch: CsmsWatch, scratch: Path) -> list[Child]:
    """The three charge points, each booted."""
    target = await Child.start(
        *module("benchmarks.unlock_target", watch.csms.url, CP_PI, str(scratch / "store")),
        log=scratch / f"{CP_PI}.log",
        control=True,
    )
    children = [target]
    for cp_id, flags in ((BARE, ()), (BARE_THREADS, ("--thread-validation",))):
        argv = module("benchmarks.bare_charge_point", watch.csms.url, cp_id, *flags)
        children.append(await Child.start(*argv, log=scratch / f"{cp_id}.log"))
    await booted(watch, CP_PI, target)
    for cp_id, child in zip((BARE, BARE_THREADS), children[1:], strict=True):
        try:
            await watch.csms.wait_for_call(cp_id, "BootNotification", timeout=60)
        except TimeoutError:
            raise child.failure(f"{cp_id} did not boot") from None
    return children


async def measure(count: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-unlock-") as scratch:
        async with CentralSystem(port=0) as csms:
            watch = CsmsWatch(csms)
            children = await _start(watch, Path(scratch))
            try:
                driven, pulses = await _driven(watch, count, children[0])
                open_path = await _in_turns(watch, count, [CP_PI, BARE, BARE_THREADS])
            finally:
                for child in children:
                    await child.stop()
    overhead = [seconds - LOCK.drive_time - LOCK.settle_time for seconds in driven]
    pulse_over = [pulse - LOCK.drive_time for pulse in pulses]
    ours, floor = open_path[CP_PI], open_path[BARE]
    ratio = median(ours) / median(floor)
    return [
        Figure(
            f"unlock overhead, lock driven (median of {count})",
            ms(median(overhead)),
            f"<= {ms(GOAL_MEDIAN)}",
            median(overhead) <= GOAL_MEDIAN,
        ),
        Figure(
            "unlock overhead, lock driven (p99)",
            ms(p99(overhead)),
            f"<= {ms(GOAL_P99)}",
            p99(overhead) <= GOAL_P99,
        ),
        Figure(
            "  of which the pulse ran over its drive time (median / p99)",
            f"{ms(median(pulse_over))} / {ms(p99(pulse_over))}",
        ),
        Figure(
            "unlock round trip, lock already open (median / p99)",
            f"{ms(median(ours))} / {ms(p99(ours))}",
        ),
        Figure(
            "floor: bare ocpp charge point (median / p99)",
            f"{ms(median(floor))} / {ms(p99(floor))}",
        ),
        Figure(
            "floor with the ocpp package's thread-pool validation (median)",
            ms(median(open_path[BARE_THREADS])),
        ),
        Figure(
            "cp-pi / floor, medians (lock already open)",
            f"{ratio:.2f}",
            f"<= {GOAL_RATIO}",
            ratio <= GOAL_RATIO,
        ),
    ]
