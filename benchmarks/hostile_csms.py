"""A hostile central system in a process of its own, for the safety-under-load figure.

    python -m benchmarks.hostile_csms

Prints its URL, then serves one charge point as :class:`RawCsms` does (BootNotification,
Authorize, StartTransaction... answered). On a line ``flood`` on stdin it answers ``flooding`` and
sends GetConfiguration CALLs without end, as fast as the link takes them; at end of input it
stops. In its own process, the flood's own work does not share the charge point's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from tests.ocpp16.raw_csms import RawCsms


async def _flood(raw: RawCsms) -> None:
    for number in itertools.count():
        await raw.send([2, f"s{number}", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
        if number % 1000 == 0:
            raw.replies.clear()


async def main() -> None:
    loop = asyncio.get_running_loop()
    async with RawCsms() as raw:
        print(raw.url, flush=True)
        flooding: asyncio.Task[None] | None = None
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "flood" and flooding is None:
                flooding = asyncio.create_task(_flood(raw))
                print("flooding", flush=True)
        if flooding is not None:
            flooding.cancel()


if __name__ == "__main__":
    asyncio.run(main())
