"""`cp-pi demo`: the unlock story, played on mock pins against the embedded CSMS, and checked.

Each step says what a person at the charger would see, then proves it from the frames the
central system received. The exit status is 0 only when every step behaved.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cp_pi.app import Station, running_station
from cp_pi.config import LockConfig, RigConfig, Settings
from cp_pi.csms.server import CentralSystem
from cp_pi.hardware.rig import RigFault

CP_ID = "cp-pi-demo"
TAG = "DEMO-TAG-1"


class StepFailed(Exception):
    pass


class Story:
    def __init__(self, station: Station, csms: CentralSystem, out: Any) -> None:
        self.station = station
        self.csms = csms
        self.out = out
        self.failures = 0
        self._pins: tuple[Any, ...] | None = None
        station.charger.subscribe(self._show_pins)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _show_pins(self) -> None:
        c = self.station.connectors[1]
        hw = c.hardware
        pins = (hw.cable_present, hw.lock_position, hw.contactor_closed, hw.lock_drives)
        if pins != self._pins:
            self._pins = pins
            lock = hw.lock_position.value if hw.lock_position else "none"
            self.say(
                f"      pins: cable={'in' if pins[0] else 'out'} lock={lock} "
                f"contactor={'closed' if pins[2] else 'open'} drives={pins[3]}"
            )

    def show_frame(self, record: Any) -> None:
        self.say(f"      {describe_frame(record.direction, record.frame)}")

    async def step(self, title: str, action: Callable[[], Awaitable[None]]) -> None:
        self.say(f"\n* {title}")
        try:
            await asyncio.wait_for(action(), timeout=20)
        except (StepFailed, TimeoutError) as error:
            self.failures += 1
            self.say(f"  FAILED: {error or 'timed out'}")
        else:
            self.say("  ok")

    async def status(self, expected: str, *, after: int, error_code: str = "NoError") -> None:
        await self.csms.wait_for_call(
            CP_ID,
            "StatusNotification",
            where=lambda p: (
                p["connectorId"] == 1 and p["status"] == expected and p["errorCode"] == error_code
            ),
            after=after,
        )

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise StepFailed(message)


def describe_frame(direction: str, frame: list[Any]) -> str:
    """One line a person can read: who speaks, what kind of message, the payload sans timestamps."""
    arrow = "CP   -> CSMS" if direction == "rx" else "CSMS -> CP  "
    if len(frame) == 4 and frame[0] == 2:
        kind, payload = f"{frame[2]}", frame[3]
    elif len(frame) == 3 and frame[0] == 3:
        kind, payload = "  answer", frame[2]
    elif len(frame) == 5 and frame[0] == 4:
        kind, payload = f"  CALLERROR {frame[2]}", frame[3]
    else:
        kind, payload = "  (unreadable)", frame
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k not in ("timestamp", "currentTime")}
    text = json.dumps(payload, separators=(", ", ": "))
    return f"{arrow} {kind} {text if len(text) <= 110 else text[:107] + '...'}"


def demo_settings(data_dir: Path) -> Settings:
    lock = LockConfig(drive_time=0.2, pause=0.3, settle_time=0.05, retries=1)
    settings = Settings(
        charge_point_id=CP_ID,
        pin_factory="mock",
        data_dir=data_dir,
        rig=RigConfig(lock_travel_time=0.05, power_w=11000),
    )
    settings.connectors[0].lock = lock
    return settings


async def play(out: Any = sys.stdout) -> int:
    with tempfile.TemporaryDirectory(prefix="cp-pi-demo-") as data_dir:
        async with running_station(demo_settings(Path(data_dir)), response_timeout=10) as station:
            assert station.csms is not None
            assert station.rig is not None
            csms, rig = station.csms, station.rig
            story = Story(station, csms, out)
            csms.on_record = story.show_frame

            def mark() -> int:
                return len(csms.frames)

            async def boot() -> None:
                await csms.wait_for_call(CP_ID, "BootNotification")
                await story.status("Available", after=0)

            async def unlock_without_cable() -> None:
                answer = await csms.unlock_connector(CP_ID, 1)
                story.expect(answer["status"] == "Unlocked", f"answer was {answer}")

            async def plug() -> None:
                start = mark()
                rig.plug(1)
                await story.status("Preparing", after=start)

            async def remote_start() -> None:
                start = mark()
                await csms.change_configuration(CP_ID, "MeterValueSampleInterval", "1")
                answer = await csms.remote_start(CP_ID, TAG, connector_id=1)
                story.expect(answer["status"] == "Accepted", f"answer was {answer}")
                await csms.wait_for_call(CP_ID, "StartTransaction", after=start)
                await story.status("Charging", after=start)
                story.expect(rig.lock_engaged(1), "the cable is not locked while charging")

            async def charge() -> None:
                sample = await csms.wait_for_call(CP_ID, "MeterValues", after=mark())
                value = sample.frame[3]["meterValue"][0]["sampledValue"][0]["value"]
                story.say(f"  energy register: {value} Wh")

            async def vehicle_pauses_and_resumes() -> None:
                connector = station.connectors[1]
                start = mark()
                rig.ev(1, "B")
                story.say("  the vehicle stops asking for energy (B2)")
                await story.status("SuspendedEV", after=start)
                story.expect(not connector.hardware.contactor_closed, "the contactor is closed")
                story.expect(connector.transaction is not None, "the transaction ended")
                start = mark()
                rig.ev(1, "C")
                story.say("  the vehicle asks again (C2)")
                await story.status("Charging", after=start)
                story.expect(connector.hardware.contactor_closed, "the contactor did not close")

            async def unlock_while_charging() -> None:
                start = mark()
                answer = await csms.unlock_connector(CP_ID, 1)
                story.expect(answer["status"] == "Unlocked", f"answer was {answer}")
                stop = await csms.wait_for_call(CP_ID, "StopTransaction", after=start)
                story.expect(stop.frame[3].get("reason") == "UnlockCommand", "wrong stop reason")
                await story.status("Finishing", after=start)
                story.expect(not rig.lock_engaged(1), "the lock is still engaged")

            async def unlock_with_stuck_lock() -> None:
                start = mark()
                answer = await csms.remote_start(CP_ID, TAG, connector_id=1)
                story.expect(answer["status"] == "Accepted", f"answer was {answer}")
                await story.status("Charging", after=start)
                rig.set_fault(1, RigFault.LOCK_STUCK)
                story.say("  fault injected: lock_stuck")
                start = mark()
                answer = await csms.unlock_connector(CP_ID, 1)
                story.expect(answer["status"] == "UnlockFailed", f"answer was {answer}")
                await csms.wait_for_call(
                    CP_ID, "StopTransaction", where=lambda p: p.get("reason") == "UnlockCommand"
                )
                await story.status("Faulted", after=start, error_code="ConnectorLockFailure")
                story.expect(rig.lock_engaged(1), "a stuck lock cannot have opened")

            async def repair_and_unplug() -> None:
                rig.set_fault(1, RigFault.NONE)
                story.say("  fault cleared: the lock moves again")
                answer = await csms.unlock_connector(CP_ID, 1)
                story.expect(answer["status"] == "Unlocked", f"answer was {answer}")
                start = mark()
                rig.unplug(1)
                await story.status("Available", after=start)

            await story.step("Boot: the charge point registers with the CSMS", boot)
            await story.step(
                "Unlock with no cable: the lock is open, answer Unlocked", unlock_without_cable
            )
            await story.step("Plug the cable: Preparing", plug)
            await story.step(
                "Remote start: lock, StartTransaction, contactor closes, Charging", remote_start
            )
            await story.step("Charge: the meter counts energy", charge)
            await story.step(
                "The vehicle pauses (B2): SuspendedEV, contactor opens; it asks again (C2):"
                " Charging, contactor closes",
                vehicle_pauses_and_resumes,
            )
            await story.step(
                "Unlock while charging: contactor opens, StopTransaction(UnlockCommand), "
                "lock opens, Unlocked, Finishing",
                unlock_while_charging,
            )
            await story.step(
                "Unlock with the lock stuck: UnlockFailed, Faulted with ConnectorLockFailure",
                unlock_with_stuck_lock,
            )
            await story.step("Repair the lock, unlock, unplug: Available", repair_and_unplug)
            steps = 9
            story.say(
                f"\n{steps - story.failures} of {steps} steps behaved"
                + ("" if story.failures else ": the unlock story is complete.")
            )
            return 1 if story.failures else 0
