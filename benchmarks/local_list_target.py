"""The charge point of the local list benchmark, in a process of its own.

A station as ``cp-pi run --mock`` builds it, plus a watch on its event loop: a task that asks
to wake every millisecond and keeps the longest it waited beyond that, which is the longest the
loop was held by anything (a handler, a store write, the schema check of a request). On a busy
machine the wall-clock hold includes time the process was not running at all, so the CPU time
the loop's thread spent in that hold is kept too: that part is the charge point's own. Control
lines on stdin, each answered with one line on stdout:

* ``lag``: the longest hold since the previous ``lag``, and the most CPU seconds one hold took;
* ``load``: seconds to open the stored list as the charge point does at start, then the
  median seconds of 1,000 look-ups of listed tags, on one line.

    python -m benchmarks.local_list_target CSMS_URL CHARGE_POINT_ID DATA_DIR
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cp_pi.app import running_station
from cp_pi.config import Settings
from cp_pi.station.local_list import LocalAuthList

TICK = 0.001


class LoopWatch:
    def __init__(self) -> None:
        self.longest = (0.0, 0.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before, cpu_before = loop.time(), time.thread_time()
            await asyncio.sleep(TICK)
            wall, cpu = self.longest
            self.longest = (
                max(wall, loop.time() - before - TICK),
                max(cpu, time.thread_time() - cpu_before),
            )

    def take(self) -> tuple[float, float]:
        longest, self.longest = self.longest, (0.0, 0.0)
        return longest


async def serve(csms_url: str, cp_id: str, data_dir: Path) -> None:
    settings = Settings(
        charge_point_id=cp_id,
        csms_url=csms_url,
        pin_factory="mock",
        data_dir=data_dir,
        log_level="WARNING",
    )
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    watch = LoopWatch()
    async with running_station(settings) as station:
        watcher = asyncio.create_task(watch.run())
        charger = station.charger
        while line := await commands.readline():
            command = line.strip()
            if command == b"lag":
                await asyncio.sleep(2 * TICK)  # let the watch see the last hold end
                wall, cpu = watch.take()
                print(f"{wall:.6f} {cpu:.6f}", flush=True)
            elif command == b"load":
                start = time.perf_counter()
                local_list = LocalAuthList(charger.store, charger.configuration)
                opened = time.perf_counter() - start
                now = datetime.now(UTC)
                times = []
                for i in range(1000):  # spread over the list, as the benchmark names its tags
                    start = time.perf_counter()
                    local_list.lookup(f"TAG{i * 7919 % 10_000:06d}", now=now)
                    times.append(time.perf_counter() - start)
                print(f"{opened:.6f} {statistics.median(times):.6f}", flush=True)
            else:
                raise SystemExit(f"unknown command {line!r}")
        watcher.cancel()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
