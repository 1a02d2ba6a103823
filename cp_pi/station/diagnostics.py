"""GetDiagnostics (OCPP 1.6 sections 4.4, 5.9; OCTT TC_045): one archive, uploaded.

The answer names the file at once; the archive is built and uploaded in a thread (charging
never waits for it), reported by DiagnosticsStatusNotification ``Uploading``, then ``Uploaded``
or ``UploadFailed`` after ``retries`` more attempts ``retryInterval`` apart; ``Idle`` when a
TriggerMessage asks while nothing is in progress.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action, DiagnosticsStatus

from cp_pi.core.routing import on
from cp_pi.station.clock import Clock
from cp_pi.station.outbox import CallError, Outbox
from cp_pi.updates import transfer
from cp_pi.updates.diagnostics import FrameRing, build_archive, log_lines

log = logging.getLogger("cp_pi.diagnostics")


class DiagnosticsUploads:
    def __init__(
        self,
        *,
        charge_point_id: str,
        data_dir: Path,
        version: str,
        outbox: Outbox,
        clock: Clock,
        frames: FrameRing,
        documents: Callable[[], dict[str, Any]],
        transfer_timeout: float,
    ) -> None:
        self._id = charge_point_id
        self._data_dir = data_dir
        self._version = version
        self._outbox = outbox
        self._clock = clock
        self._frames = frames
        #: The effective configuration (secrets hidden), the store's counters...: by name.
        self._documents = documents
        self._timeout = transfer_timeout
        self.uploading = False
        self._task: asyncio.Task[None] | None = None

    @on(Action.get_diagnostics)
    def get_diagnostics(
        self,
        location: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
        **_: Any,
    ) -> call_result.GetDiagnostics:
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%SZ")
        name = f"{self._id}-diagnostics-{stamp}.tar.gz"
        if self._task is not None and not self._task.done():
            log.warning("GetDiagnostics to %s ignored: an upload is in progress", location)
            return call_result.GetDiagnostics()
        window = (_time(start_time), _time(stop_time))
        attempts = max(retries or 0, 0) + 1
        interval = float(max(retry_interval or 0, 0))
        self._task = asyncio.create_task(
            self._upload(name, location, window, attempts, interval), name="diagnostics"
        )
        return call_result.GetDiagnostics(file_name=name)

    def trigger(self) -> None:
        status = DiagnosticsStatus.uploading if self.uploading else DiagnosticsStatus.idle
        answer = self._outbox.send("DiagnosticsStatusNotification", {"status": status.value})
        answer.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _upload(
        self,
        name: str,
        location: str,
        window: tuple[datetime | None, datetime | None],
        attempts: int,
        interval: float,
    ) -> None:
        folder = self._data_dir / "diagnostics"
        target = folder / name
        self.uploading = True
        try:
            problem = await self._build(folder, target, window)
            await self._report(DiagnosticsStatus.uploading)
            url = location.rstrip("/") + "/" + name
            for attempt in range(attempts if problem is None else 0):
                if attempt:
                    await asyncio.sleep(interval)
                try:
                    await asyncio.to_thread(transfer.upload, url, target, timeout=self._timeout)
                except transfer.TransferError as error:
                    problem = str(error)
                    log.warning("diagnostics upload attempt %d failed: %s", attempt + 1, problem)
                    continue
                log.info("diagnostics uploaded to %s", transfer.file_name(location) or location)
                self.uploading = False
                await self._report(DiagnosticsStatus.uploaded)
                return
            log.error("diagnostics upload failed: %s", problem)
            self.uploading = False
            await self._report(DiagnosticsStatus.upload_failed)
        finally:
            self.uploading = False
            shutil.rmtree(folder, ignore_errors=True)

    async def _build(
        self, folder: Path, target: Path, window: tuple[datetime | None, datetime | None]
    ) -> str | None:
        """The archive, or why there is none (a full disk)."""
        documents = {
            "version": {
                "cp_pi": self._version,
                "python": sys.version,
                "platform": platform.platform(),
                "machine": platform.machine(),
                "built_at": datetime.now(UTC).isoformat(),
            },
            **self._documents(),
        }
        frames = self._frames.lines()
        start, stop = window

        def build() -> int:
            folder.mkdir(parents=True, exist_ok=True)
            return build_archive(
                target,
                folder=target.name.removesuffix(".tar.gz"),
                log=log_lines(self._data_dir, start, stop),
                documents=documents,
                frames=frames,
            )

        try:
            size = await asyncio.to_thread(build)
        except OSError as error:
            return f"cannot write the archive: {error.strerror or error}"
        log.info("diagnostics archive %s: %d bytes", target.name, size)
        return None

    async def _report(self, status: DiagnosticsStatus) -> None:
        try:
            async with asyncio.timeout(30):
                await self._outbox.send("DiagnosticsStatusNotification", {"status": status.value})
        except (ConnectionError, TimeoutError, CallError) as error:
            log.warning("DiagnosticsStatusNotification %s not delivered: %s", status.value, error)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
