"""Figure: a Local Authorization List of 10,000 entries, filled, changed, opened and replaced,
without holding the charge point's event loop for more than 50 ms at a time.

The central system (this process) sends the list in updates of SendLocalListMaxLength entries,
as the charge point announces, to a charge point in a process of its own
(:mod:`benchmarks.local_list_target`) that watches its own event loop; after each update it
says the longest the loop was held meanwhile, in wall-clock time and in the CPU time of the
loop's thread during that hold (the goal is on the latter: on a machine shared with other work
the wall-clock hold also counts time the process was not scheduled). The schema check of each
request, the handler and the store transaction are all inside that window. A restart in the
middle shows the list kept and what opening it costs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal, NamedTuple

from benchmarks.common import Child, CsmsWatch, Figure, booted, median, module, ms
from cp_pi.csms.server import CallErrorReceived, CentralSystem

GOAL_HOLD = 0.050
LIST_LENGTH = 10_000
CP_ID = "bench-local-list"


class Hold(NamedTuple):
    wall: float
    cpu: float


def _worst(holds: list[Hold]) -> str:
    return f"{ms(max(h.cpu for h in holds))} ({ms(max(h.wall for h in holds))} wall)"


def _entries(first: int, count: int, status: str = "Accepted") -> list[dict[str, Any]]:
    return [
        {"idTag": f"TAG{i:06d}", "idTagInfo": {"status": status, "parentIdTag": "FLEET"}}
        for i in range(first, first + count)
    ]


async def _update(
    csms: CentralSystem,
    target: Child,
    version: int,
    entries: list[dict[str, Any]],
    kind: Literal["Full", "Differential"],
) -> Hold:
    """One SendLocalList, Accepted; the longest hold of the charge point's loop meanwhile."""
    answer = await csms.send_local_list(CP_ID, version, entries, kind)
    if answer != {"status": "Accepted"}:
        raise target.failure(f"SendLocalList {version} answered {answer}")
    return await _hold(target)


async def _hold(target: Child) -> Hold:
    wall, cpu = (await target.ask("lag")).split()
    return Hold(float(wall), float(cpu))


async def _start(watch: CsmsWatch, scratch: Path) -> Child:
    argv = module("benchmarks.local_list_target", watch.csms.url, CP_ID, str(scratch / "store"))
    target = await Child.start(*argv, log=scratch / f"{CP_ID}.log", control=True)
    await booted(watch, CP_ID, target)
    await target.ask("lag")  # the boot's own work is not the list's
    return target


async def measure() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-local-list-") as scratch:
        async with CentralSystem(port=0) as csms:
            watch = CsmsWatch(csms)
            target = await _start(watch, Path(scratch))
            try:
                answer = await csms.get_configuration(CP_ID, ["SendLocalListMaxLength"])
                step = int(answer["configurationKey"][0]["value"])
                fill = [await _update(csms, target, 1, _entries(0, step), "Full")]
                for version, first in enumerate(range(step, LIST_LENGTH, step), start=2):
                    fill.append(
                        await _update(csms, target, version, _entries(first, step), "Differential")
                    )
                version = len(fill)
                half = step // 2
                changes = [{"idTag": f"TAG{i:06d}"} for i in range(half)] + _entries(
                    half, step - half, "Blocked"
                )
                differential = await _update(csms, target, version + 1, changes, "Differential")
                await target.stop()
                target = await _start(watch, Path(scratch))
                kept = (await csms.get_local_list_version(CP_ID))["listVersion"]
                opened, lookup = (float(x) for x in (await target.ask("load")).split())
                replace = await _update(csms, target, version + 2, _entries(0, step), "Full")
                try:
                    await csms.send_local_list(CP_ID, version + 3, _entries(0, LIST_LENGTH))
                    oversize_answer = "Accepted"
                except CallErrorReceived as error:
                    oversize_answer = error.code
                oversize = await _hold(target)
            finally:
                await target.stop()
    rounds = watch.round_trips["SendLocalList"]
    worst_fill = max(h.cpu for h in fill)
    typical_fill = median([h.wall for h in fill])
    return [
        Figure(
            f"local list filled to {LIST_LENGTH:,} in {len(fill)} updates of {step}:"
            " longest event-loop hold, CPU (wall)",
            _worst(fill),
            f"<= {ms(GOAL_HOLD)}",
            worst_fill <= GOAL_HOLD,
        ),
        Figure(
            "  wall-clock hold / SendLocalList round trip (medians)",
            f"{ms(typical_fill)} / {ms(median(rounds[: len(fill)]))}",
            f"<= {ms(GOAL_HOLD)}",
            typical_fill <= GOAL_HOLD,
        ),
        Figure(
            f"differential update of {step} on a list of {LIST_LENGTH:,}: longest hold",
            _worst([differential]),
            f"<= {ms(GOAL_HOLD)}",
            differential.cpu <= GOAL_HOLD,
        ),
        Figure(
            f"list of {LIST_LENGTH:,} kept across a restart; opening it / one look-up (median)",
            f"version {kept}; {ms(opened)} / {ms(lookup)}",
            f"<= {ms(GOAL_HOLD)}",
            kept == version + 1 and opened <= GOAL_HOLD,
        ),
        Figure(
            f"full update replacing {LIST_LENGTH:,} entries by {step}: longest hold",
            _worst([replace]),
            f"<= {ms(GOAL_HOLD)}",
            replace.cpu <= GOAL_HOLD,
        ),
        Figure(
            f"one request of {LIST_LENGTH:,} entries (over the frame size limit):"
            f" {oversize_answer}; longest hold",
            _worst([oversize]),
        ),
    ]
