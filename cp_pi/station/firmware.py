"""UpdateFirmware (OCPP 1.6 sections 4.5, 5.19): download, wait for the charging to end,
install, and report each step with FirmwareStatusNotification.

The order is the specification's (and OCTT's TC_044): ``Downloading``, then ``Downloaded`` or
``DownloadFailed``, then ``Installing``, then ``Installed`` or ``InstallationFailed``; ``Idle``
only when a TriggerMessage asks while nothing is in progress.

Installing waits for running transactions to end. Meanwhile every connector reports
``Unavailable`` (5.19 recommends it for connectors not in use; it is the one status that tells
a driver "no new charge here", and a connector still charging turns Unavailable when its
transaction ends, as a Scheduled ChangeAvailability does), so that no new transaction starts.

With ``firmware.installer = "python"`` the new version is installed beside the running one and
the process restarts into it; the new version reports ``Installed`` after its BootNotification,
or the previous one reports ``InstallationFailed`` after a rollback (:mod:`cp_pi.updates.launcher`
says who rolls back when). Every blocking step runs in a thread: charging goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action, FirmwareStatus

from cp_pi.config import FirmwareConfig, FirmwareInstaller
from cp_pi.core.routing import on
from cp_pi.station.clock import Cancellable, Clock
from cp_pi.station.connector import Connector
from cp_pi.station.outbox import CallError, Outbox
from cp_pi.updates import transfer
from cp_pi.updates.command import run_installer
from cp_pi.updates.launcher import ROLLED_BACK, TRIAL
from cp_pi.updates.layout import InstallFailed, Layout
from cp_pi.updates.release import NotARelease, identify

log = logging.getLogger("cp_pi.firmware")

#: Seconds a status notification may wait for its answer before the update goes on regardless.
ANSWER_WITHIN = 30.0
#: Seconds Installing waits for the statuses queued before it (none wait with the link down).
STATUSES_WITHIN = 5.0


@dataclass(frozen=True)
class FirmwareJob:
    location: str
    retries: int
    retry_interval: float


class FirmwareUpdates:
    def __init__(
        self,
        *,
        config: FirmwareConfig,
        work_dir: Path,
        version: str,
        outbox: Outbox,
        connectors: Mapping[int, Connector],
        clock: Clock,
        subscribe: Callable[[Callable[[], None]], None],
        refresh: Callable[[], None],
        reboot: Callable[[], None],
    ) -> None:
        self._config = config
        self._work_dir = work_dir
        self._version = version
        self._outbox = outbox
        self._connectors = connectors
        self._clock = clock
        self._refresh = refresh
        self._reboot = reboot
        self.layout = Layout(config.root)
        #: The step in progress; None: idle.
        self.status: FirmwareStatus | None = None
        self._scheduled: Cancellable | None = None
        self._task: asyncio.Task[None] | None = None
        self._confirm: Cancellable | None = None
        self._no_transactions = asyncio.Event()
        #: The outcome of the last update, for the central system once the link is up.
        self._outcome: FirmwareStatus | None = None
        subscribe(self._on_change)
        self._on_change()

    # -- the request ---------------------------------------------------------------------------

    @on(Action.update_firmware)
    def update_firmware(
        self,
        location: str,
        retrieve_date: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.UpdateFirmware:
        job = FirmwareJob(location, max(retries or 0, 0), float(max(retry_interval or 0, 0)))
        if self._task is not None and not self._task.done():
            log.warning("UpdateFirmware %s ignored: an update is in progress", location)
            return call_result.UpdateFirmware()
        if self._scheduled is not None:
            self._scheduled.cancel()
            log.info("UpdateFirmware: the update scheduled before is replaced")
        delay = (_parse_time(retrieve_date) - self._clock.now()).total_seconds()
        log.info("UpdateFirmware %s: retrieving in %.0f s", location, max(delay, 0))
        timer = self._clock.timer
        self._scheduled = timer.call_at(timer.time() + max(delay, 0), lambda: self._start(job))
        return call_result.UpdateFirmware()

    def _start(self, job: FirmwareJob) -> None:
        self._scheduled = None
        self._task = asyncio.create_task(self._update(job), name="firmware update")
        self._task.add_done_callback(_log_failure)

    def trigger(self) -> None:
        """TriggerMessage FirmwareStatusNotification: the step in progress, or Idle."""
        self._notify(self.status or FirmwareStatus.idle)

    # -- the steps -----------------------------------------------------------------------------

    async def _update(self, job: FirmwareJob) -> None:
        try:
            archive = await self._download(job)
            if archive is None:
                return
            try:
                await self._install(archive)
            finally:
                shutil.rmtree(archive.parent, ignore_errors=True)
        finally:
            self.status = None

    async def _download(self, job: FirmwareJob) -> Path | None:
        await self._report(FirmwareStatus.downloading)
        name = transfer.file_name(job.location) or "firmware"
        folder = self._work_dir / "download"
        target = folder / name
        problem = ""
        for attempt in range(job.retries + 1):
            if attempt:
                await asyncio.sleep(job.retry_interval)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                size = await asyncio.to_thread(
                    transfer.download, job.location, target, timeout=self._config.transfer_timeout
                )
            except transfer.DiskFull as error:
                problem = str(error)
                break  # retrying does not make room
            except (transfer.TransferError, OSError) as error:
                problem = str(error)
                log.warning("firmware download attempt %d failed: %s", attempt + 1, problem)
                continue
            log.info("firmware downloaded: %s (%d bytes)", name, size)
            await self._report(FirmwareStatus.downloaded)
            return target
        log.error("firmware download failed: %s; the running version stays", problem)
        shutil.rmtree(folder, ignore_errors=True)
        await self._report(FirmwareStatus.download_failed)
        return None

    async def _install(self, archive: Path) -> None:
        command = self._config.installer is FirmwareInstaller.COMMAND
        version = None
        if not command:
            try:
                version = (await asyncio.to_thread(identify, archive)).version
            except NotARelease as error:
                await self._report(FirmwareStatus.installing)
                await self._failed(f"{archive.name} is not a cp-pi release: {error}")
                return
        held = self._hold_connectors()
        try:
            await self._no_transactions.wait()
            # The connectors' new statuses (and a StopTransaction) go out before Installing.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATUSES_WITHIN):
                    await self._outbox.drained()
            await self._report(FirmwareStatus.installing)
            if command:
                assert self._config.command is not None
                problem = await asyncio.to_thread(run_installer, self._config.command, archive)
                if problem is None:
                    log.info("firmware installed by %s", self._config.command.split()[0])
                    await self._report(FirmwareStatus.installed)
                else:
                    await self._failed(problem)
                return
            assert version is not None
            try:
                await asyncio.to_thread(
                    self.layout.install, archive, version, pip_args=self._config.pip_args
                )
                await asyncio.to_thread(self.layout.begin_trial, version)
            except InstallFailed as error:
                await self._failed(f"{version}: {error}")
                return
            log.warning(
                "firmware %s installed beside %s: restarting into it", version, self._version
            )
            held = {}  # the restart boots with the persisted availability
            self._reboot()
        finally:
            self._release_connectors(held)

    async def _failed(self, problem: str) -> None:
        log.error("firmware installation failed: %s; the running version stays", problem)
        await self._report(FirmwareStatus.installation_failed)

    # -- no new transactions while an installation waits ----------------------------------------

    def _on_change(self) -> None:
        self._watch_transactions()
        if self._outcome is not None and self._outbox.online:
            outcome, self._outcome = self._outcome, None
            self._notify(outcome)
            self.layout.finish()

    def _watch_transactions(self) -> None:
        # A stop sequence still holding its connector (the lock releasing) is not over yet.
        if any(c.transaction is not None or c.busy.locked() for c in self._connectors.values()):
            self._no_transactions.clear()
        else:
            self._no_transactions.set()

    def _hold_connectors(self) -> dict[int, tuple[bool, bool | None]]:
        """Every connector Unavailable (a charging one once its transaction ends); the
        availability they had, to give back if nothing restarts."""
        held = {}
        for connector in self._connectors.values():
            held[connector.id] = (connector.operative, connector.scheduled_operative)
            if connector.transaction is None:
                connector.operative = False
            else:
                connector.scheduled_operative = False
                log.info(
                    "firmware: installing once %s on connector %d ends",
                    connector.transaction.name,
                    connector.id,
                )
        self._refresh()
        return held

    def _release_connectors(self, held: dict[int, tuple[bool, bool | None]]) -> None:
        for connector_id, (operative, scheduled) in held.items():
            connector = self._connectors[connector_id]
            connector.operative, connector.scheduled_operative = operative, scheduled
        if held:
            self._refresh()

    # -- after a restart into a new version ------------------------------------------------------

    def start(self) -> None:
        """A trial of this version starts its clock: no central system in time, no future."""
        record = self._trial()
        if record is None or record.get("state") != TRIAL:
            return
        timer = self._clock.timer
        self._confirm = timer.call_at(
            timer.time() + self._config.confirm_timeout, self._confirm_timed_out
        )

    def on_boot(self) -> None:
        """BootNotification accepted: how the last update ended is reported once the link is
        up (after the boot's StatusNotifications)."""
        record = self._trial()
        if record is None:
            return
        if self._confirm is not None:
            self._confirm.cancel()
            self._confirm = None
        if record.get("state") == TRIAL:
            log.warning("firmware %s runs and reached the central system: Installed", self._version)
            self._outcome = FirmwareStatus.installed
        elif record.get("state") == ROLLED_BACK:
            log.error(
                "firmware %s was rolled back to %s: %s",
                record.get("version"),
                self._version,
                record.get("reason", "no reason recorded"),
            )
            self._outcome = FirmwareStatus.installation_failed

    def _trial(self) -> dict[str, Any] | None:
        """The pending record, when this process is the version it is about."""
        if not self.layout.runs_this_process():
            return None
        record = self.layout.record()
        if record is None or self.layout.current() != self._version:
            return None
        return record

    def _confirm_timed_out(self) -> None:
        self._confirm = None
        reason = f"it did not reach the central system within {self._config.confirm_timeout:g} s"
        log.error("firmware %s: %s; rolling back", self._version, reason)
        self.layout.roll_back(reason)
        self._reboot()

    # -- notifications ---------------------------------------------------------------------------

    async def _report(self, status: FirmwareStatus) -> None:
        """Send and wait for the answer (so that a restart never overtakes it)."""
        self.status = status
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                await self._outbox.send("FirmwareStatusNotification", {"status": status.value})
        except (ConnectionError, TimeoutError, CallError) as error:
            log.warning("FirmwareStatusNotification %s not delivered: %s", status.value, error)

    def _notify(self, status: FirmwareStatus) -> None:
        answer = self._outbox.send("FirmwareStatusNotification", {"status": status.value})
        answer.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def close(self) -> None:
        for pending in (self._scheduled, self._confirm):
            if pending is not None:
                pending.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("firmware update stopped by an error", exc_info=error)


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when
