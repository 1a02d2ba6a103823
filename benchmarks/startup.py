"""Figure 2: from ``python -m cp_pi run --mock`` being started to BootNotification at the CSMS.

Each run is a fresh process with a fresh store, as after an install. The import profile comes
from ``python -X importtime``: the package's total, and the packages whose modules' own
import time weighs most (each module's self time, summed by top-level package).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, Child, CsmsWatch, Figure, cp_pi_run, median
from cp_pi.csms.server import CentralSystem

GOAL = 1.0
TOP = 6

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass(frozen=True)
class Import:
    name: str
    depth: int
    self_us: int
    cumulative_us: int


async def boot_time(watch: CsmsWatch, run: int, scratch: Path) -> float:
    cp_id = f"bench-start-{run}"
    loop = asyncio.get_running_loop()
    started = loop.time()
    child = await Child.start(
        *cp_pi_run(watch.csms.url, cp_id, scratch / cp_id), log=scratch / f"{cp_id}.log"
    )
    try:
        boot = await watch.csms.wait_for_call(cp_id, "BootNotification", timeout=60)
    except TimeoutError:
        raise child.failure(f"{cp_id} did not boot") from None
    finally:
        await child.stop()
    return boot.time - started


def import_profile() -> list[Import]:
    """``python -X importtime -c 'import cp_pi.app'``, one entry per imported module."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cp_pi.app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        Import(found[4], len(found[3]) // 2, int(found[1]), int(found[2]))
        for found in map(_IMPORT_LINE.match, result.stderr.splitlines())
        if found is not None
    ]


def _subtree(imports: list[Import], name: str) -> tuple[Import, list[Import]]:
    """The entry of ``name`` and what it imported: importtime lists children before parents."""
    index = next(i for i, entry in enumerate(imports) if entry.name == name)
    root = imports[index]
    first = index
    while first > 0 and imports[first - 1].depth > root.depth:
        first -= 1
    return root, imports[first:index]


async def measure(runs: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="cp-pi-bench-start-") as scratch:
        async with CentralSystem(port=0) as csms:
            watch = CsmsWatch(csms)
            times = [await boot_time(watch, run, Path(scratch)) for run in range(runs)]
    app, subtree = _subtree(import_profile(), "cp_pi.app")
    by_package: dict[str, int] = defaultdict(int)
    for entry in [*subtree, app]:
        by_package[entry.name.partition(".")[0]] += entry.self_us
    heaviest = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:TOP]
    return [
        Figure(
            f"start-up to BootNotification (median of {runs})",
            f"{median(times):.3f} s",
            f"<= {GOAL:.1f} s",
            median(times) <= GOAL,
        ),
        Figure("  fastest / slowest run", f"{min(times):.3f} s / {max(times):.3f} s"),
        Figure("import cp_pi.app (importtime, cumulative)", f"{app.cumulative_us / 1000:.0f} ms"),
        *(Figure(f"  of which {name}", f"{us / 1000:.0f} ms") for name, us in heaviest),
    ]
