"""`cp-pi bench`: a charge point on mock pins, its central system, and the bench page to drive them.

The bench never touches real GPIO (the pin factory is forced to ``mock``) and, unless a data
directory is configured explicitly, keeps its message store in a throwaway directory: run on the
Pi beside the service, it must not share the service's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path

from cp_pi.app import running_station, stopped_by_signals
from cp_pi.config import Settings

log = logging.getLogger("cp_pi.bench")


async def run_bench(settings: Settings) -> int:
    """Serve the bench until SIGTERM or Ctrl+C; :class:`~cp_pi.listening.CannotListen` when
    its port (or the embedded central system's) cannot be listened on."""
    stop = asyncio.Event()
    with stopped_by_signals(stop):
        async with contextlib.AsyncExitStack() as stack:
            changes: dict[str, object] = {"pin_factory": "mock"}
            if "data_dir" not in settings.model_fields_set:
                scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="cp-pi-bench-"))
                changes["data_dir"] = Path(scratch)
            station = await stack.enter_async_context(
                running_station(settings.model_copy(update=changes), bench=True)
            )
            assert station.bench is not None  # bench=True builds it or raises
            central = "embedded" if station.csms is not None else settings.csms_url
            print(f"bench: {station.bench.url}/  (central system: {central})", flush=True)
            await stop.wait()
            log.info("stopping")
    return 0
