"""Run every benchmark and print one table (Markdown, so it pastes into the docs as it is).

    benchmarks/run [--quick] [--only unlock,startup,footprint,fleet,flood,rcd,pilot]
                   [--idle-seconds S] [--fleet-count N]

Exit status 0 when every goal is met, 1 when one is missed. Progress goes to stderr, the table
to stdout. The load average before and after is printed with the table: these are wall-clock
figures, and another busy process on the machine shows up in them.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import platform
import sys
from collections.abc import Awaitable, Callable, Sequence

import cp_pi
from benchmarks import fleet_load, flood, footprint, pilot, rcd_trip, startup, unlock
from benchmarks.common import Figure

SECTIONS = ("unlock", "startup", "footprint", "fleet", "flood", "rcd", "pilot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and a smaller fleet (~1 minute)"
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(SECTIONS),
        help=f"comma-separated sections out of {','.join(SECTIONS)}",
    )
    parser.add_argument("--idle-seconds", type=float, help="idle CPU window (default 60, quick 10)")
    parser.add_argument("--fleet-count", type=int, help="fleet size (default 1000, quick 100)")
    return parser


def _plans(args: argparse.Namespace) -> dict[str, Callable[[], Awaitable[list[Figure]]]]:
    quick = args.quick
    idle = args.idle_seconds if args.idle_seconds is not None else (10.0 if quick else 60.0)
    count = args.fleet_count if args.fleet_count is not None else (100 if quick else 1000)
    fleet = (
        fleet_load.Plan(count, heartbeat_interval=10, observe_seconds=20)
        if quick
        else fleet_load.Plan(count, heartbeat_interval=20, observe_seconds=60)
    )
    return {
        "unlock": lambda: unlock.measure(50 if quick else 200),
        "startup": lambda: startup.measure(5 if quick else 10),
        "footprint": lambda: footprint.measure(
            idle, heartbeats=2_000 if quick else 10_000, unlocks=200 if quick else 1_000
        ),
        "fleet": lambda: fleet_load.measure(fleet),
        "rcd": lambda: rcd_trip.measure(50 if quick else 200),
        "pilot": lambda: pilot.measure(50 if quick else 200, window=5.0 if quick else 20.0),
        "flood": lambda: flood.measure(
            20_000 if quick else 100_000, trials=100, redial_window=30.0 if quick else 60.0
        ),
    }


def render(figures: Sequence[Figure]) -> str:
    rows = [("figure", "value", "goal", "result")]
    for figure in figures:
        result = "" if figure.met is None else ("pass" if figure.met else "MISS")
        rows.append((figure.name, figure.value, figure.goal, result))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def _run(
    sections: Sequence[str], plans: dict[str, Callable[[], Awaitable[list[Figure]]]]
) -> list[Figure]:
    figures: list[Figure] = []
    for name in sections:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        figures += await plans[name]()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        print(f"benchmarks/run: unknown section {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    # An installed charge point has its bytecode, compiled when pip installed the wheel; a checkout
    # run with PYTHONDONTWRITEBYTECODE set would compile every module at each start, costing
    # start-up time and about 0.3 MiB that no installed charge point pays.
    compileall.compile_dir(os.path.dirname(cp_pi.__file__), quiet=1)
    load_before = os.getloadavg()[0]
    figures = asyncio.run(_run([s for s in SECTIONS if s in args.only], _plans(args)))
    load_after = os.getloadavg()[0]
    print(
        f"benchmarks/run {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip()
        + f" -- {os.cpu_count()} cores, Python {platform.python_version()},"
        f" load average {load_before:.2f} before, {load_after:.2f} after\n"
    )
    print(render(figures))
    return 0 if all(figure.met is not False for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
