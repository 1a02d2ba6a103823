"""kill -9 at any point of a transaction loses nothing: a real process, really killed.

The charge point runs as `cp-pi run --mock`, driven through the bench protocol like a bench
tester would drive it; the central system is the embedded one, in this process. After every
SIGKILL the process is started again on the same data directory. At the end every transaction
the central system heard of has one start and exactly one stop.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from cp_pi.csms.server import CentralSystem

CP = "cp-crash"
TAG = "CRASH-TAG"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Bench:
    """A bench-protocol client: one command at a time, waiting for its ack."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def do(self, op: str, **fields: Any) -> None:
        await self.connection.send(json.dumps({"op": op, "connector": 1, **fields}))
        while True:
            message = json.loads(await self.connection.recv())
            if message.get("type") in ("ack", "error") and message.get("op") == op:
                assert message["type"] == "ack", message
                return


@asynccontextmanager
async def charge_point_process(csms: CentralSystem, data: Path) -> AsyncIterator[Bench]:
    """Start `cp-pi run --mock`; yield a bench client once it booted; SIGKILL it on exit."""
    port = free_port()
    start = len(csms.frames)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cp_pi", "run", "--mock", "--id", CP, "--csms-url", csms.url,
        "--data-dir", str(data), "--bench-port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await csms.wait_for_call(CP, "StatusNotification", after=start, timeout=30)
        async with connect(f"ws://127.0.0.1:{port}/bench") as connection:
            yield Bench(connection)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def life(csms: CentralSystem, bench: Bench, kill_at: str) -> None:
    """One transaction's life, cut short at `kill_at` (then a random few milliseconds more)."""
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("plugged", lambda: bench.do("plug")),
        ("swiped", lambda: bench.do("swipe", id_tag=TAG)),
        ("started", lambda: wait_call(csms, "StartTransaction")),
        ("charging", lambda: wait_call(csms, "MeterValues")),
        ("stop swiped", lambda: bench.do("swipe", id_tag=TAG)),
        ("stopped", lambda: wait_call(csms, "StopTransaction")),
    ]
    for name, step in steps:
        await step()
        if name == kill_at:
            await asyncio.sleep(random.uniform(0, 0.03))  # a random moment, not a wait for state
            return
    await bench.do("unplug")


async def wait_call(csms: CentralSystem, action: str) -> None:
    await csms.wait_for_call(CP, action, after=len(csms.frames), timeout=15)


KILL_POINTS = ["plugged", "swiped", "started", "charging", "stop swiped", "stopped"]


async def test_sigkill_anywhere_in_a_transaction_loses_nothing(tmp_path: Path) -> None:
    random.seed(1)
    async with CentralSystem(port=0) as csms:
        async with charge_point_process(csms, tmp_path) as bench:
            await csms.change_configuration(CP, "MeterValueSampleInterval", "1")
        for kill_at in KILL_POINTS * 2:
            async with charge_point_process(csms, tmp_path) as bench:
                await life(csms, bench, kill_at)
        async with charge_point_process(csms, tmp_path):  # the last start delivers what is left
            await asyncio.wait_for(all_stopped(csms), timeout=30)

    starts = Counter(id for id in transaction_ids(csms, "StartTransaction", answered=True))
    stops = {
        (payload["transactionId"], payload["timestamp"])
        for payload in payloads(csms, "StopTransaction")
    }
    stops_per_transaction = Counter(transaction_id for transaction_id, _ in stops)
    assert len(csms.transactions) >= 8
    assert set(stops_per_transaction) == set(csms.transactions)
    assert all(count == 1 for count in stops_per_transaction.values()), stops_per_transaction
    assert set(starts) == set(csms.transactions)


async def all_stopped(csms: CentralSystem) -> None:
    while any(record.reason is None for record in csms.transactions.values()):
        await csms.wait_for_call(CP, "StopTransaction", after=len(csms.frames), timeout=30)


def payloads(csms: CentralSystem, action: str) -> list[dict[str, Any]]:
    return [r.frame[3] for r in csms.frames if r.direction == "rx" and r.is_call(action)]


def transaction_ids(csms: CentralSystem, action: str, *, answered: bool) -> list[int]:
    """transactionIds the central system gave in its answers to `action`."""
    asked = {r.frame[1] for r in csms.frames if r.direction == "rx" and r.is_call(action)}
    return [
        r.frame[2]["transactionId"]
        for r in csms.frames
        if answered and r.direction == "tx" and len(r.frame) == 3 and r.frame[1] in asked
    ]
