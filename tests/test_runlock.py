"""The run lock between real processes: held while its holder lives, free once it is gone."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cp_pi.runlock import AlreadyRunning, RunLock

_HOLDER = """
import sys
from pathlib import Path
from cp_pi.runlock import RunLock

RunLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.asynccontextmanager
async def held_by_another_process(data_dir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A separate cp-pi process holding the lock until the block ends (or the test kills it)."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        str(data_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        async with asyncio.timeout(30):
            assert await holder.stdout.readline() == b"held\n"
        yield holder
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


async def test_a_second_process_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    async with held_by_another_process(tmp_path):
        with pytest.raises(AlreadyRunning) as refused:
            RunLock(tmp_path).acquire()
    assert refused.value.path == tmp_path / "cp-pi.lock"
    assert str(refused.value) == f"cp-pi is running (lock held on {tmp_path / 'cp-pi.lock'})"


async def test_a_crashed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    async with held_by_another_process(tmp_path) as holder:
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        with RunLock(tmp_path):
            pass


def test_released_lock_can_be_taken_again_and_the_file_stays(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    with RunLock(data_dir), pytest.raises(AlreadyRunning):
        RunLock(data_dir).acquire()
    assert (data_dir / "cp-pi.lock").is_file()
    with RunLock(data_dir):
        pass
