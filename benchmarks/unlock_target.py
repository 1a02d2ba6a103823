"""The charge point of the unlock benchmark, in a process of its own.

It is a station as ``cp-pi run --mock`` builds it, on short lock timings, plus control lines on
stdin for what OCPP has no message for, each answered with one line on stdout:

* ``arm`` engages the lock and waits out the coil's pause, so that the next UnlockConnector
  drives the lock and nothing else sits in the measured window; answers ``armed``. A cable is
  plugged first: a latch engaged in an empty socket is released by the charge point itself;
* ``pulse`` answers how long, in seconds, the unlock coil was last on, read from the mock pin's
  history: the event loop's timers let a pulse run a little over the configured drive time.

    python -m benchmarks.unlock_target CSMS_URL CHARGE_POINT_ID DATA_DIR
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cp_pi.app import running_station
from cp_pi.config import ConnectorConfig, LockConfig, RigConfig, Settings

#: Short, in the proportions of real ones; the benchmark subtracts drive and settle time.
LOCK = LockConfig(drive_time=0.05, settle_time=0.01, pause=0.05, retries=0)
RIG = RigConfig(lock_travel_time=0.02, contactor_delay=0.01)


async def serve(csms_url: str, cp_id: str, data_dir: Path) -> None:
    settings = Settings(
        charge_point_id=cp_id,
        csms_url=csms_url,
        pin_factory="mock",
        data_dir=data_dir,
        connectors=[ConnectorConfig(lock=LOCK)],
        rig=RIG,
        log_level="WARNING",
    )
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    async with running_station(settings) as station:
        hardware = station.connectors[1].hardware
        assert station.rig is not None
        station.rig.plug(1)
        async with asyncio.timeout(10):
            while not hardware.cable_present:  # noqa: ASYNC110  (debounced: no event to await)
                await asyncio.sleep(0.01)
        unlock_coil = station.pin_factory.pin(LOCK.unlock_pin)
        while line := await commands.readline():
            if line.strip() == b"pulse":
                # MockPin.states: (seconds since the previous change, level); the last entry
                # is the coil going off, so its seconds are how long it was on.
                print(f"{unlock_coil.states[-1].timestamp:.6f}", flush=True)
                continue
            if line.strip() != b"arm":
                raise SystemExit(f"unknown command {line!r}")
            result = await hardware.lock()
            # The lock driver rests the coil at least as long as it was on; wait that out here.
            await asyncio.sleep(max(LOCK.pause, LOCK.drive_time) + LOCK.settle_time)
            print("armed" if result.ok else f"not armed: {result}", flush=True)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
