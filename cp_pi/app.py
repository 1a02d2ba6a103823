"""The composition root: read the settings, build the adapters, wire them to the charge point.

Nothing else in the package decides which pin factory, store, link or bench to use; tests and the
demo build a :class:`Station` the same way the service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpiozero.pins.mock import MockFactory
from ocpp.v16.enums import MessageTrigger

from cp_pi import __version__
from cp_pi.bench.server import BenchServer, ExtraCommand
from cp_pi.config import ConfigError, MeterFailure, Settings, check_runnable
from cp_pi.core.schedule import Supply
from cp_pi.errors import UserError
from cp_pi.hardware.factory import make_pin_factory
from cp_pi.hardware.parts import build_hardware
from cp_pi.hardware.rig import BenchRig
from cp_pi.hardware.safety import all_outputs_off
from cp_pi.ocpp16.link import BACKOFF_FIRST, CANNOT_CONNECT, Link
from cp_pi.ocpp16.session import FrameObserver
from cp_pi.runlock import AlreadyRunning, RunLock
from cp_pi.station.charger import Charger
from cp_pi.station.clock import Clock
from cp_pi.station.connector import Connector
from cp_pi.station.diagnostics import DiagnosticsUploads
from cp_pi.station.firmware import FirmwareUpdates
from cp_pi.status_socket import (
    LinkWatch,
    StatusServer,
    public_url,
    served_in,
    status_document,
)
from cp_pi.store import Store, watch_file
from cp_pi.systemd import Notifier
from cp_pi.tasks import cancel_and_wait
from cp_pi.updates.diagnostics import FrameRing
from cp_pi.updates.layout import Layout

if TYPE_CHECKING:
    from cp_pi.csms.files import FileServer
    from cp_pi.csms.server import CentralSystem

log = logging.getLogger("cp_pi")
#: The opt-in OCPP frame log (``log.ocpp_frames``), apart so that it can be filtered.
frames_log = logging.getLogger("cp_pi.frames")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StationError(UserError):
    """A setting that cannot work on this machine; the CLI shows it as one line, exit 2."""


class RestartRequested(Exception):
    """The central system reset the charge point; ``cp-pi run`` starts its process afresh.

    A fresh process is what an operator expects of a reset: the configuration file is read
    again and nothing of the old process's memory survives. The station has been shut down
    (transactions finished, outputs off, store closed) when this is raised.
    """

    def __init__(self, launcher: Path | None = None) -> None:
        super().__init__()
        #: Where this process runs from a side-by-side layout, its start-up check
        #: (:mod:`cp_pi.updates.launcher`): a restart goes through it into the current version.
        self.launcher = launcher


@dataclass
class Station:
    """One charge point with everything around it, built from settings."""

    settings: Settings
    pin_factory: Any
    store: Store
    charger: Charger
    rig: BenchRig | None
    link: Link | None = None
    #: Ends only when a reset restarts the process (``running_station(restart_on_reset=True)``).
    link_task: asyncio.Task[None] | None = None
    bench: BenchServer | None = None
    csms: CentralSystem | None = None
    csms_files: FileServer | None = None
    frames: FrameRing | None = None
    firmware: FirmwareUpdates | None = None
    diagnostics: DiagnosticsUploads | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def connectors(self) -> dict[int, Connector]:
        return self.charger.connectors


def boot_info(settings: Settings) -> dict[str, str]:
    info = {
        "chargePointVendor": settings.vendor,
        "chargePointModel": settings.model,
        "firmwareVersion": __version__,
    }
    if settings.serial_number:
        info["chargePointSerialNumber"] = settings.serial_number
    return info


def build_station(settings: Settings, *, clock: Clock | None = None) -> Station:
    """Pins, rig (on mock pins), hardware, store and charge point; nothing runs yet."""
    loop = asyncio.get_running_loop()
    factory = make_pin_factory(settings.pin_factory)
    try:
        check_runnable(settings, mock_pins=isinstance(factory, MockFactory))
    except ConfigError as error:
        raise StationError(f"config error: {error}") from None
    built = build_hardware(
        settings.connectors, settings.rig, pin_factory=factory, loop=loop, adc=settings.adc
    )
    connectors: list[Connector] = []
    holder: list[Charger] = []

    def changed(connector: Connector) -> Callable[[], None]:
        return lambda: holder[0].on_hardware_change(connector) if holder else None

    for hardware, config in zip(built.connectors, settings.connectors, strict=True):
        connector = Connector(
            hardware=hardware,
            meter=hardware.meter,
            meter_required=config.meter.on_failure is MeterFailure.STOP,
        )
        hardware.on_change = changed(connector)
        connectors.append(connector)
    store = Store.open_or_memory(settings.data_dir)
    charger = Charger(
        settings.charge_point_id,
        store=store,
        connectors=connectors,
        boot_info=boot_info(settings),
        authorization_key=(
            key.get_secret_value() if (key := settings.security.authorization_key) else None
        ),
        clock=clock,
        supply=Supply(voltage=settings.supply.voltage, phases=settings.supply.phases),
    )
    holder.append(charger)
    charger.recover()
    station = Station(settings, factory, store, charger, built.rig)
    _add_firmware_management(station)
    return station


def _add_firmware_management(station: Station) -> None:
    """UpdateFirmware and GetDiagnostics beside the Core requests."""
    settings, charger = station.settings, station.charger
    station.frames = FrameRing(settings.diagnostics.frames)
    station.firmware = FirmwareUpdates(
        config=settings.firmware,
        work_dir=settings.data_dir / "firmware",
        version=__version__,
        outbox=charger.outbox,
        connectors=charger.connectors,
        clock=charger.clock,
        subscribe=charger.subscribe,
        refresh=charger.refresh,
        reboot=charger.reboot_requested.set,
    )
    station.diagnostics = DiagnosticsUploads(
        charge_point_id=settings.charge_point_id,
        data_dir=settings.data_dir,
        version=__version__,
        outbox=charger.outbox,
        clock=charger.clock,
        frames=station.frames,
        documents=lambda: diagnostic_documents(station),
        transfer_timeout=settings.firmware.transfer_timeout,
    )
    charger.handlers += [station.firmware, station.diagnostics]
    charger.boot_hooks.append(station.firmware.on_boot)
    triggers = charger.requests.triggers
    triggers[MessageTrigger.firmware_status_notification] = station.firmware.trigger
    triggers[MessageTrigger.diagnostics_status_notification] = station.diagnostics.trigger


def diagnostic_documents(station: Station) -> dict[str, Any]:
    """What a diagnostics archive says of the station, secrets hidden (pydantic shows a
    SecretStr as stars; the URL loses user, password and query; GetConfiguration's keys
    never include the AuthorizationKey) and no idTags."""
    settings = station.settings.model_dump(mode="json")
    if station.settings.csms_url is not None:
        settings["csms_url"] = public_url(station.settings.csms_url)
    known, _unknown = station.charger.configuration.get(None)
    store = station.store
    return {
        "configuration": {
            "settings": settings,
            "ocpp_keys": {key.key: key.value for key in known},
        },
        "store": {
            "queued_messages": len(store.outbox()),
            "open_transactions": len(store.open_transactions()),
            "degraded": store.degraded,
        },
    }


@contextlib.asynccontextmanager
async def running_station(
    settings: Settings,
    *,
    bench: bool | None = False,
    response_timeout: float = 30,
    on_link_state: Callable[[str], None] | None = None,
    restart_on_reset: bool = False,
    backoff_first: float = BACKOFF_FIRST,
    clock: Clock | None = None,
) -> AsyncIterator[Station]:
    """A station connected to its CSMS (the embedded one when none is configured).

    ``bench``: True requires the bench server, None starts it when the pins are mock pins.
    ``restart_on_reset``: after a reset the link ends instead of booting again in this process.
    """
    station = build_station(settings, clock=clock)
    try:
        csms_url = settings.csms_url
        bench_csms_ops: dict[str, ExtraCommand] | None = None
        if csms_url is None:
            # Imported here: a charge point that has a central system of its own (the service's
            # case) never loads the embedded one, and does not keep its code in memory.
            from cp_pi.bench.csms_ops import csms_ops
            from cp_pi.csms.files import FileServer
            from cp_pi.csms.server import SERVING_JOURNAL_LIMIT, CentralSystem

            station.csms = CentralSystem(
                host="127.0.0.1", port=0, journal_limit=SERVING_JOURNAL_LIMIT
            )
            # Where the bench's GetDiagnostics uploads, and firmware can be put to download.
            station.csms_files = FileServer(settings.data_dir / "csms-files")
            bench_csms_ops = csms_ops(
                station.csms, settings.charge_point_id, files=station.csms_files
            )
        # The bench listens first: a port taken is then the one thing the operator hears of.
        if bench or (bench is None and station.rig is not None):
            if station.rig is None:
                raise StationError(
                    "config error: bench: the bench drives mock pins only (pin_factory = 'mock')"
                )
            station.bench = BenchServer(
                station.charger,
                station.rig,
                host=settings.bench.host,
                port=settings.bench.port,
                allowed_hosts=settings.bench.allowed_hosts,
                extra_commands=bench_csms_ops,
            )
            await station.bench.start()
        if csms_url is None:
            assert station.csms is not None
            await station.csms.start()
            csms_url = station.csms.url
            assert station.csms_files is not None
            station.csms_files.start()
        listeners = [f for f in (on_link_state, station.bench and station.bench.on_link_state) if f]

        def link_state(text: str) -> None:
            for listener in listeners:
                listener(text)

        observers: list[FrameObserver] = []
        if station.frames is not None:
            observers.append(station.frames.observe)  # the diagnostics' recent frames
        if station.bench is not None:
            observers.append(station.bench.on_frame)
        if settings.log.ocpp_frames:
            frames_log.setLevel(logging.INFO)  # asked for by name: shown whatever log_level says
            observers.append(log_frame)

        def on_frame(direction: str, frame: list[Any]) -> None:
            for observer in observers:
                observer(direction, frame)

        station.link = Link(
            station.charger,
            csms_url,
            on_frame=on_frame if observers else None,
            on_state=link_state,
            response_timeout=response_timeout,
            security=settings.security,
            boot_again_after_reset=not restart_on_reset,
            backoff_first=backoff_first,
            max_requests=settings.max_requests_in_flight,
        )
        station.charger.metering.start()  # clock-aligned readings
        station.charger.reservations.start()  # their expiry timers
        if station.firmware is not None:
            station.firmware.start()  # a new version on trial: its time to reach the CSMS
        station.charger.smart_charging.follow()  # the limits of the installed profiles
        station.link_task = asyncio.create_task(station.link.run(), name="link")
        station._tasks.append(station.link_task)
        store_watch = watch_file(station.store, station.charger.refresh)
        station._tasks.append(asyncio.create_task(store_watch, name="store file"))
        yield station
    finally:
        await shutdown(station)


def log_frame(direction: str, frame: list[Any]) -> None:
    """One line per frame, whole; the session hands frames over with their secrets redacted."""
    said = "sent" if direction == "tx" else "received"
    frames_log.info("%s %s", said, json.dumps(frame, ensure_ascii=False))


async def shutdown(station: Station) -> None:
    """Outputs off first, then everything else; safe to call on a half-built station.

    Only this station's outputs: a fleet stops its stations one by one, and the process-wide
    switch-off belongs to the signal handler.
    """
    for connector in station.connectors.values():
        connector.hardware.outputs_off()
    # Then the aux contacts' word: a contactor that does not open is reported as welded; one
    # that opens within its settling window is not a fault (a stop in the middle of a charge).
    await asyncio.gather(
        *(c.hardware.confirm_contactor_open() for c in station.connectors.values())
    )
    await cancel_and_wait(station._tasks)
    for part in (station.firmware, station.diagnostics):
        if part is not None:
            await part.close()
    await station.charger.close()
    if station.bench is not None:
        await station.bench.stop()
    if station.csms is not None:
        await station.csms.stop()
    if station.csms_files is not None:
        station.csms_files.stop()
    for connector in station.connectors.values():
        connector.hardware.close()
    if station.rig is not None:
        station.rig.close()
    station.store.close()


async def serve(settings: Settings) -> int:
    """`cp-pi run`: until SIGTERM or Ctrl+C, with systemd told how it goes.

    It holds the run lock in the data directory all along, so that the installer's
    `cp-pi check-wiring` cannot drive the same pins meanwhile.
    """
    lock = RunLock(settings.data_dir)
    try:
        lock.acquire()
    except AlreadyRunning as error:
        raise StationError(f"{error}: one charge point per data directory") from None
    except OSError as error:  # an unwritable data dir must not stop the charging: say so
        log.error("cannot take the run lock (%s); check-wiring will not see this process", error)
    try:
        return await _serve(settings)
    finally:
        lock.release()


@contextlib.contextmanager
def stopped_by_signals(stop: asyncio.Event) -> Iterator[list[str]]:
    """SIGTERM and Ctrl+C set ``stop`` for a clean shutdown, with every output off first,
    before anything else can go wrong (Python does not handle SIGTERM by itself).

    Yields the names of the signals received, for the log."""
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        all_outputs_off()
        received.append(signal.Signals(signum).name)
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield received
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _serve(settings: Settings) -> int:
    notifier = Notifier.from_environment()
    stop = asyncio.Event()
    watchdog = asyncio.create_task(notifier.run_watchdog())
    link_watch = LinkWatch(failure_prefix=CANNOT_CONNECT)

    def on_link_state(text: str) -> None:
        notifier.status(f"CSMS link: {text}")
        link_watch.on_state(text)

    try:
        with stopped_by_signals(stop) as signals:
            async with (
                running_station(
                    settings, bench=None, on_link_state=on_link_state, restart_on_reset=True
                ) as station,
                _answering_status(station, link_watch),
            ):
                notifier.ready()  # the GPIO is up; the CSMS link is reported in STATUS
                if station.bench is not None:
                    print(f"bench: {station.bench.url}/", flush=True)
                reset = await _stopped_or_reset(stop, station)
                if reset:
                    notifier.reloading()
                    log.warning("reset: restarting the process")
                else:
                    notifier.stopping()
                    _say_what_stopping_does(station, signals[0])
    finally:
        watchdog.cancel()
        notifier.close()
    if reset:
        layout = Layout(settings.firmware.root)
        managed = layout.runs_this_process() and layout.launcher.is_file()
        raise RestartRequested(layout.launcher if managed else None)
    return 0


@contextlib.asynccontextmanager
async def _answering_status(station: Station, link: LinkWatch) -> AsyncIterator[None]:
    """`cp-pi status` answered from the runtime directory (systemd's) or the data directory."""
    assert station.link is not None
    url = station.link.url
    server = StatusServer(
        served_in(os.environ, station.settings.data_dir),
        lambda: status_document(station.charger, link, url),
    )
    await server.start()
    try:
        yield
    finally:
        await server.stop()


def _say_what_stopping_does(station: Station, cause: str) -> None:
    """The journal tells what becomes of a charge that was running when the service stopped."""
    running = [c for c in station.connectors.values() if c.transaction is not None]
    if not running:
        log.info("stopping on %s: no transaction is running", cause)
    for connector in running:
        assert connector.transaction is not None
        log.warning(
            "stopping on %s: connector %d: %s stays open: energy is off now, the lock stays as"
            " it is, and it ends with reason PowerLoss when cp-pi starts again",
            cause,
            connector.id,
            connector.transaction.name,
        )


async def _stopped_or_reset(stop: asyncio.Event, station: Station) -> bool:
    """Wait for a stop signal (False) or for a reset to end the link (True)."""
    assert station.link_task is not None
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopped, station.link_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if stop.is_set():
        return False
    station.link_task.result()  # a link that failed says why here
    return True
