"""The composition root: read the settings, build the adapters, wire them to the charge point.

Nothing else in the package decides which pin factory, store, link or bench to use; tests and the
demo build a :class:`Station` the same way the service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpiozero.pins.mock import MockFactory

from cp_pi import __version__
from cp_pi.bench.server import BenchServer, ExtraCommand
from cp_pi.config import Settings
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.factory import make_pin_factory
from cp_pi.hardware.meter import EnergyMeter, NoMeter
from cp_pi.hardware.rig import BenchRig
from cp_pi.hardware.safety import all_outputs_off
from cp_pi.ocpp16.link import Link
from cp_pi.runlock import AlreadyRunning, RunLock
from cp_pi.station.charge_point import ChargePoint
from cp_pi.station.connector import Connector
from cp_pi.store import Store
from cp_pi.systemd import Notifier
from cp_pi.tasks import cancel_and_wait

if TYPE_CHECKING:
    from cp_pi.csms.server import CentralSystem

log = logging.getLogger("cp_pi")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StationError(Exception):
    """A setting that cannot work on this machine; the CLI shows it as one line, exit 2."""


class RestartRequested(Exception):
    """The central system reset the charge point; ``cp-pi run`` starts its process afresh.

    A fresh process is what an operator expects of a reset: the configuration file is read
    again and nothing of the old process's memory survives. The station has been shut down
    (transactions finished, outputs off, store closed) when this is raised.
    """


@dataclass
class Station:
    """One charge point with everything around it, built from settings."""

    settings: Settings
    pin_factory: Any
    store: Store
    charge_point: ChargePoint
    rig: BenchRig | None
    link: Link | None = None
    #: Ends only when a reset restarts the process (``running_station(restart_on_reset=True)``).
    link_task: asyncio.Task[None] | None = None
    bench: BenchServer | None = None
    csms: CentralSystem | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def connectors(self) -> dict[int, Connector]:
        return self.charge_point.connectors


def boot_info(settings: Settings) -> dict[str, str]:
    info = {
        "chargePointVendor": settings.vendor,
        "chargePointModel": settings.model,
        "firmwareVersion": __version__,
    }
    if settings.serial_number:
        info["chargePointSerialNumber"] = settings.serial_number
    return info


def build_station(settings: Settings) -> Station:
    """Pins, rig (on mock pins), hardware, store and charge point; nothing runs yet."""
    loop = asyncio.get_running_loop()
    factory = make_pin_factory(settings.pin_factory)
    rig = (
        BenchRig(factory, settings.connectors, settings.rig, loop=loop)
        if isinstance(factory, MockFactory)
        else None
    )
    connectors: list[Connector] = []
    holder: list[ChargePoint] = []

    def changed(connector: Connector) -> Callable[[], None]:
        return lambda: holder[0].on_hardware_change(connector) if holder else None

    for number, config in enumerate(settings.connectors, start=1):
        hardware = ConnectorHardware(number, config, pin_factory=factory, loop=loop)
        meter: EnergyMeter = rig.meter(number) if rig is not None else NoMeter()
        connector = Connector(hardware=hardware, meter=meter)
        hardware.on_change = changed(connector)
        connectors.append(connector)
    store = Store.open_or_memory(settings.data_dir)
    charge_point = ChargePoint(
        settings.charge_point_id,
        store=store,
        connectors=connectors,
        boot_info=boot_info(settings),
        authorization_key=(
            key.get_secret_value() if (key := settings.security.authorization_key) else None
        ),
    )
    holder.append(charge_point)
    charge_point.recover()
    return Station(settings, factory, store, charge_point, rig)


@contextlib.asynccontextmanager
async def running_station(
    settings: Settings,
    *,
    bench: bool | None = False,
    response_timeout: float = 30,
    on_link_state: Callable[[str], None] | None = None,
    restart_on_reset: bool = False,
) -> AsyncIterator[Station]:
    """A station connected to its CSMS (the embedded one when none is configured).

    ``bench``: True requires the bench server, None starts it when the pins are mock pins.
    ``restart_on_reset``: after a reset the link ends instead of booting again in this process.
    """
    station = build_station(settings)
    try:
        csms_url = settings.csms_url
        if csms_url is None and station.rig is None:
            raise StationError(
                "config error: csms_url: required on real pins (the embedded CSMS is mock-only)"
            )
        bench_csms_ops: dict[str, ExtraCommand] | None = None
        if csms_url is None:
            # Imported here: a charge point that has a central system of its own (the service's
            # case) never loads the embedded one, and does not keep its code in memory.
            from cp_pi.bench.csms_ops import csms_ops
            from cp_pi.csms.server import SERVING_JOURNAL_LIMIT, CentralSystem

            station.csms = CentralSystem(
                host="127.0.0.1", port=0, journal_limit=SERVING_JOURNAL_LIMIT
            )
            await station.csms.start()
            csms_url = station.csms.url
            bench_csms_ops = csms_ops(station.csms, settings.charge_point_id)
        if bench or (bench is None and station.rig is not None):
            if station.rig is None:
                raise StationError(
                    "config error: bench: the bench drives mock pins only (pin_factory = 'mock')"
                )
            station.bench = BenchServer(
                station.charge_point,
                station.rig,
                host=settings.bench.host,
                port=settings.bench.port,
                extra_commands=bench_csms_ops,
            )
            await station.bench.start()
        listeners = [f for f in (on_link_state, station.bench and station.bench.on_link_state) if f]

        def link_state(text: str) -> None:
            for listener in listeners:
                listener(text)

        station.link = Link(
            station.charge_point,
            csms_url,
            on_frame=station.bench.on_frame if station.bench else None,
            on_state=link_state,
            response_timeout=response_timeout,
            security=settings.security,
            boot_again_after_reset=not restart_on_reset,
            max_requests=settings.max_requests_in_flight,
        )
        station.link_task = asyncio.create_task(station.link.run(), name="link")
        station._tasks.append(station.link_task)
        yield station
    finally:
        await shutdown(station)


async def shutdown(station: Station) -> None:
    """Outputs off first, then everything else; safe to call on a half-built station.

    Only this station's outputs: a fleet stops its stations one by one, and the process-wide
    switch-off belongs to the signal handler.
    """
    for connector in station.connectors.values():
        connector.hardware.outputs_off()
    await cancel_and_wait(station._tasks)
    await station.charge_point.close()
    if station.bench is not None:
        await station.bench.stop()
    if station.csms is not None:
        await station.csms.stop()
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
def stopped_by_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and Ctrl+C set ``stop`` for a clean shutdown, with every output off first,
    before anything else can go wrong (Python does not handle SIGTERM by itself)."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        all_outputs_off()
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _serve(settings: Settings) -> int:
    notifier = Notifier.from_environment()
    stop = asyncio.Event()
    watchdog = asyncio.create_task(notifier.run_watchdog())
    try:
        with stopped_by_signals(stop):
            async with running_station(
                settings,
                bench=None,
                on_link_state=lambda text: notifier.status(f"CSMS link: {text}"),
                restart_on_reset=True,
            ) as station:
                notifier.ready()  # the GPIO is up; the CSMS link is reported in STATUS
                if station.bench is not None:
                    print(f"bench: {station.bench.url}/", flush=True)
                reset = await _stopped_or_reset(stop, station)
                if reset:
                    notifier.reloading()
                    log.warning("reset: restarting the process")
                else:
                    notifier.stopping()
                    log.info("stopping")
    finally:
        watchdog.cancel()
        notifier.close()
    if reset:
        raise RestartRequested
    return 0


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
