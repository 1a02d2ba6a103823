"""One cp-pi at a time on the GPIO: an exclusive ``flock`` on ``cp-pi.lock`` in the data directory.

The service and the installer's self-test must never drive the same lock and contactor together.
A pid file would go stale when the service crashes and need guessing about recycled pids; the
kernel drops an ``flock`` with the last descriptor of the process that held it, so the lock is
held exactly while a cp-pi is alive, with or without systemd on the machine. The file itself is
never removed: unlinking it would let a second process lock a fresh file while the first still
holds the old one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from cp_pi.errors import UserError

FILE_NAME = "cp-pi.lock"


class AlreadyRunning(UserError):
    """Another process holds the lock."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"cp-pi is running (lock held on {path})")
        self.path = path


class RunLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting: raise :class:`AlreadyRunning` when another holds it.

        ``OSError`` (say, a lock file this user may not open) is left to the caller: not knowing
        whether the service runs is not the same as knowing that it does not.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Read-only is enough for flock, and lets the service user open a file root created.
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.path) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
