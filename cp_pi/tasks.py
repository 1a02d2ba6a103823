"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("cp_pi")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, timeout: float = 5) -> None:
    """Cancel, then wait for them to end; a task that ignores cancellation is named, not awaited.

    ``asyncio.wait`` neither raises the tasks' exceptions nor hides a cancellation of the caller,
    unlike awaiting each task under ``suppress(CancelledError)``. The exceptions of tasks that
    ended by themselves (a receiver whose connection closed) are taken, not left to be reported
    as "never retrieved".
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=timeout)
        for task in stuck:
            log.error(
                "task %s did not stop within %.0f s:\n%s", task.get_name(), timeout, _stack(task)
            )
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()


def _stack(task: asyncio.Task[Any]) -> str:
    text = io.StringIO()
    task.print_stack(file=text)
    return text.getvalue()
