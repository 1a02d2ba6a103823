"""Driving one connector's lock and contactor once each way, and judging each move by its input.

The trial goes through the same :class:`ConnectorHardware` as a charging session, so the same
interlocks hold: the contactor is opened first, closed only while the lock reports engaged, and
the lock released only once the aux contact confirms the contactor open. A step whose
precondition failed is not run, and says why. Each failure names the pins to check in the words
of the person at the charger, who holds a multimeter, not the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cp_pi.config import ConnectorConfig
from cp_pi.core.reading import ConnectorReading, LockOutcome, LockPosition, LockResult
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.wiring.pin_map import Header


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Check:
    connector_id: int
    name: str
    verdict: Verdict
    #: What to check (a failure) or why the step did not run.
    advice: str = ""


class Trial:
    def __init__(
        self,
        hardware: ConnectorHardware,
        config: ConnectorConfig,
        where: Header,
        say: Callable[[str], None],
    ) -> None:
        self._hw = hardware
        self._config = config
        self._where = where
        self._say = say
        self.checks: list[Check] = []

    def _record(self, name: str, verdict: Verdict, advice: str = "") -> None:
        self.checks.append(Check(self._hw.connector_id, name, verdict, advice))

    def _judge(self, name: str, passed: bool, advice: str) -> bool:
        self._record(name, Verdict.PASS if passed else Verdict.FAIL, "" if passed else advice)
        return passed

    async def run(self) -> None:
        has_aux = self._config.contactor.feedback_pin is not None
        self._say(f"connector {self._hw.connector_id}: opening the contactor")
        opened = (await self._hw.open_contactor()).ok
        if has_aux and not self._judge(
            "contactor open before the test",
            opened,
            f"contactor aux contact reads closed with the contactor off: welded contact or aux"
            f" wiring on {self._aux}",
        ):
            lock = ["lock engages", "lock releases"] if self._hw.has_lock else []
            steps = [*lock[:1], "contactor closes", "contactor opens", *lock[1:]]
            self._not_run("the contactor did not confirm open", *steps)
            return
        engaged = await self._engage() if self._hw.has_lock else True
        if has_aux:
            opened = await self._cycle_contactor(engaged)
        else:
            self._say(
                f"connector {self._hw.connector_id}: no aux contact configured: the contactor"
                " is not driven, as closing it could not be confirmed"
            )
        if self._hw.has_lock:
            await self._release(engaged=engaged, contactor_open=opened)

    def _not_run(self, why: str, *names: str) -> None:
        for name in names:
            self._record(name, Verdict.NOT_RUN, why)

    # -- lock ----------------------------------------------------------------------------------

    async def _engage(self) -> bool:
        # A lock that already reads engaged would "engage" without moving and prove nothing.
        if self._hw.lock_position is LockPosition.ENGAGED:
            self._say(f"connector {self._hw.connector_id}: the lock reads engaged: releasing it")
            result = await self._hw.unlock()
            if not self._judge(
                "lock released before the test",
                result.outcome is LockOutcome.UNLOCKED,
                self._release_advice(result),
            ):
                self._not_run("the lock did not release first", "lock engages")
                return False
        self._say(f"connector {self._hw.connector_id}: driving the lock to engaged")
        result = await self._hw.lock()
        return self._judge(
            "lock engages", result.outcome is LockOutcome.LOCKED, self._engage_advice(result)
        )

    async def _release(self, *, engaged: bool, contactor_open: bool) -> None:
        if not engaged:
            self._not_run("the lock never reported engaged", "lock releases")
            return
        if not contactor_open:
            self._not_run(
                "the contactor did not confirm open, so the lock stays engaged", "lock releases"
            )
            return
        self._say(f"connector {self._hw.connector_id}: driving the lock to released")
        result = await self._hw.unlock()
        if result.refused is not None:
            self._not_run(f"refused: {result.refused}", "lock releases")
            return
        self._judge(
            "lock releases", result.outcome is LockOutcome.UNLOCKED, self._release_advice(result)
        )

    def _engage_advice(self, result: LockResult) -> str:
        if result.fault is ConnectorReading.PIN_READ_ERROR:
            return f"lock feedback unreadable on {self._feedback}"
        return (
            f"lock feedback never changed: check the switch wiring on {self._feedback}; if the"
            f" lock did not move, check its drive on {self._engage_pin} and the 12 V supply"
        )

    def _release_advice(self, result: LockResult) -> str:
        if result.fault is ConnectorReading.PIN_READ_ERROR:
            return f"lock feedback unreadable on {self._feedback}"
        if result.refused is not None:
            return f"not released: {result.refused}"
        return (
            f"lock feedback still reads engaged after the release drive: if the lock did not"
            f" move, check its drive on {self._release_pin} and the 12 V supply; if it did,"
            f" check the switch wiring on {self._feedback} (a wire shorted to 0 V reads engaged)"
        )

    # -- contactor -----------------------------------------------------------------------------

    async def _cycle_contactor(self, engaged: bool) -> bool:
        """Close and open again; True when the contactor is confirmed open at the end."""
        if not engaged:
            self._not_run(
                "the lock must be engaged before the contactor closes", "contactor closes"
            )
            self._not_run("the contactor never closed", "contactor opens")
            return True
        if self._hw.cable_present:
            self._not_run(
                "a plug is in the socket: unplug it, no vehicle may be connected while the"
                " contactor is tested",
                "contactor closes",
            )
            self._not_run("the contactor never closed", "contactor opens")
            return True
        self._say(f"connector {self._hw.connector_id}: closing the contactor")
        closed = self._judge(
            "contactor closes",
            (await self._hw.close_contactor(empty_socket_test=True)).ok,
            f"contactor aux contact never closed: check the contactor drive on {self._contactor}"
            f" (relay, coil supply, safety chain) and the aux wiring on {self._aux}",
        )
        self._say(f"connector {self._hw.connector_id}: opening the contactor")
        opened = (await self._hw.open_contactor()).ok
        if closed:
            self._judge(
                "contactor opens",
                opened,
                f"contactor aux contact stayed closed after opening: welded contact or aux"
                f" wiring on {self._aux}",
            )
        else:
            self._not_run("the contactor never closed", "contactor opens")
        return opened

    # -- pins, as the electrician finds them ---------------------------------------------------

    def _pin(self, gpio: int | None) -> str:
        return "(not configured)" if gpio is None else self._where(gpio)

    @property
    def _feedback(self) -> str:
        return self._pin(self._config.lock.feedback_pin)

    @property
    def _engage_pin(self) -> str:
        return self._pin(self._config.lock.lock_pin)

    @property
    def _release_pin(self) -> str:
        lock = self._config.lock
        # A push-push coil releases on the same pin that engages it.
        return self._pin(lock.lock_pin if lock.unlock_pin is None else lock.unlock_pin)

    @property
    def _contactor(self) -> str:
        return self._pin(self._config.contactor.pin)

    @property
    def _aux(self) -> str:
        return self._pin(self._config.contactor.feedback_pin)
