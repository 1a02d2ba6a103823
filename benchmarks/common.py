"""What every benchmark shares: figures, statistics, the clock at the CSMS and child processes.

Times are taken where the brief asks for them, at the central system, from its own frame record:
a frame's time is stamped as it crosses the CSMS's websocket, so the CSMS's schema validation
before sending and after receiving stays outside every round trip.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cp_pi.csms.server import CentralSystem, FrameRecord

ROOT = Path(__file__).resolve().parent.parent

CALL, CALLRESULT = 2, 3

#: prctl(2) option: the signal the kernel sends a process when its parent dies.
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    goal: str = ""
    #: None when the figure has no goal.
    met: bool | None = None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    """The 99th percentile; with 200 samples, between the two largest."""
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[98]


class CsmsWatch:
    """Round trips and received CALLs, read off the CSMS's frame record as frames cross it."""

    def __init__(self, csms: CentralSystem) -> None:
        self.csms = csms
        #: Action -> seconds from our CALL leaving the CSMS to its CALLRESULT arriving.
        self.round_trips: dict[str, list[float]] = defaultdict(list)
        #: Action -> (charge point, time) of every CALL the CSMS received.
        self.calls: dict[str, list[tuple[str, float]]] = defaultdict(list)
        #: Action -> the charge points that sent at least one.
        self.senders: dict[str, set[str]] = defaultdict(set)
        self._sent: dict[str, tuple[str, float]] = {}
        csms.on_record = self._record

    def _record(self, record: FrameRecord) -> None:
        frame = record.frame
        if not frame:
            return
        if record.direction == "tx" and frame[0] == CALL:
            self._sent[frame[1]] = (frame[2], record.time)
        elif record.direction == "rx" and frame[0] == CALLRESULT:
            sent = self._sent.pop(frame[1], None)
            if sent is not None:
                self.round_trips[sent[0]].append(record.time - sent[1])
        elif record.direction == "rx" and frame[0] == CALL:
            self.calls[frame[2]].append((record.charge_point_id, record.time))
            self.senders[frame[2]].add(record.charge_point_id)

    async def until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait, woken by each frame, until ``condition`` holds."""
        async with asyncio.timeout(timeout):
            while not condition():
                await self.csms.journal.changed()

    async def received(self, action: str, count: int, timeout: float) -> None:
        """Wait until the CSMS has received ``count`` CALLs of ``action`` in all."""
        await self.until(lambda: len(self.calls[action]) >= count, timeout)


def _die_with_the_benchmark() -> None:
    """In the child before exec: SIGTERM it when the benchmark ends, however it ends.

    ``finally`` blocks stop the children on an exception or Ctrl-C, but not when the benchmark
    itself is killed; the kernel's parent-death signal (Linux, by hand through ctypes: the
    standard library has no binding) covers that too, so no charge point outlives a run.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


class Child:
    """A process under measurement; its output goes to a file, shown if it fails."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(cls, *argv: str, log: Path, control: bool = False) -> Child:
        """Start ``argv``; with ``control``, stdin and stdout are pipes for :meth:`ask`."""
        with log.open("wb") as output:
            pipe = asyncio.subprocess.PIPE
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                stdin=pipe if control else asyncio.subprocess.DEVNULL,
                stdout=pipe if control else output,
                stderr=output,
                preexec_fn=_die_with_the_benchmark,
            )
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ask(self, line: str) -> str:
        """Write a line to the child's stdin and read its one-line reply."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the child was started without a control pipe")
        stdin.write(f"{line}\n".encode())
        return (await stdout.readline()).decode().strip()

    def rss_mb(self) -> float:
        """Resident set size, shared libraries counted whole (Linux), in MiB."""
        return self._memory_mb("status", "VmRSS:")

    def pss_mb(self) -> float:
        """Proportional set size: each shared page divided among its users (Linux), in MiB."""
        return self._memory_mb("smaps_rollup", "Pss:")

    def _memory_mb(self, table: str, key: str) -> float:
        for line in Path(f"/proc/{self.pid}/{table}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {key} in /proc/{self.pid}/{table}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time from /proc (Linux)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> int:
        """SIGTERM, as systemd stops the service; the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=60)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    def failure(self, what: str) -> RuntimeError:
        tail = self.log.read_text(errors="replace").splitlines()[-20:]
        return RuntimeError(f"{what}; last lines of {self.log}:\n" + "\n".join(tail))


def module(name: str, *args: str) -> tuple[str, ...]:
    """``python -m name args``, on this interpreter, from the repository root."""
    return (sys.executable, "-m", name, *args)


def cp_pi_run(csms_url: str, cp_id: str, data_dir: Path) -> tuple[str, ...]:
    """`cp-pi run --mock` as a user starts it, against the benchmark's CSMS."""
    return module(
        "cp_pi",
        "run",
        "--mock",
        "--csms-url",
        csms_url,
        "--id",
        cp_id,
        "--data-dir",
        str(data_dir),
        "--bench-port",
        "0",
    )


async def booted(watch: CsmsWatch, cp_id: str, child: Child, timeout: float = 60) -> None:
    """Wait for BootNotification and the first StatusNotification of connector 1."""
    try:
        await watch.csms.wait_for_call(cp_id, "BootNotification", timeout=timeout)
        await watch.csms.wait_for_call(
            cp_id, "StatusNotification", where=lambda p: p["connectorId"] == 1, timeout=timeout
        )
    except TimeoutError:
        raise child.failure(f"{cp_id} did not boot within {timeout} s") from None
