"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("cp_pi")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, timeout: float = 5) -> None:
    """Cancel, then wait for them to end; a task that ignores cancellation is named, not awaited.

    ``asyncio.wait`` neither raises the tasks' exceptions nor hides a cancellation of the caller,
    unlike awaiting each task under ``suppress(CancelledError)``.
    """
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=timeout)
    for task in stuck:
        log.error("task %s did not stop within %.0f s", task.get_name(), timeout)
