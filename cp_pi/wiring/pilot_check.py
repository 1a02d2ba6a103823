"""`cp-pi check-wiring`'s look at the control pilot and the proximity pilot, with no vehicle.

Through the ADC: the pilot must read +12 V (state A, nobody connected) and the PP line open (no
plug). Then the pilot is driven to -12 V (state F) and back, each level read back through its
peak detector. Each failure names the driver, the detector and the ADC channel to look at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cp_pi.config import ConnectorConfig
from cp_pi.core.pilot import PilotState, PpFault, cable_rating, classify
from cp_pi.hardware.connector import ConnectorHardware
from cp_pi.hardware.inputs import PinReadError
from cp_pi.hardware.pilot import ControlPilot
from cp_pi.wiring.pin_map import Header
from cp_pi.wiring.trial import Check, Verdict

#: How long the pilot may take to show a level it is driven to: the peak detectors' hold
#: capacitors follow a falling level within about 150 ms.
SETTLE_TIMEOUT = 1.0

SPI_ADVICE = (
    "the ADC does not answer: check that SPI is on (dtparam=spi=on), the MCP3008's 3.3 V"
    " supply, and its wires to GPIO11 / pin 23 (CLK), GPIO10 / pin 19 (DIN), GPIO9 / pin 21"
    " (DOUT) and GPIO8 / pin 24 (CS)"
)


class PilotCheck:
    def __init__(
        self,
        hardware: ConnectorHardware,
        pilot: ControlPilot,
        config: ConnectorConfig,
        where: Header,
        say: Callable[[str], None],
    ) -> None:
        assert config.pilot is not None
        self._hw = hardware
        self._pilot = pilot
        self._pilot_config = config.pilot
        self._pp = config.pp
        self._where = where
        self._say = say
        self.checks: list[Check] = []

    def _judge(self, name: str, passed: bool, advice: str) -> bool:
        verdict = Verdict.PASS if passed else Verdict.FAIL
        self.checks.append(Check(self._hw.connector_id, name, verdict, "" if passed else advice))
        return passed

    @property
    def _driver(self) -> str:
        return self._where(self._pilot_config.pwm_pin)

    def _high(self) -> float:
        high, _ = self._pilot.levels()
        return high

    async def run(self) -> None:
        number = self._hw.connector_id
        channel = self._pilot_config.high_channel
        try:
            high = self._high()
        except PinReadError:
            self._judge("control pilot reads +12 V", False, SPI_ADVICE)
            return
        state = classify(high)
        self._say(f"connector {number}: control pilot {high:+.1f} V (state {state})")
        idle = self._judge(
            "control pilot reads +12 V",
            state is PilotState.A,
            f"the pilot reads {high:+.1f} V (state {state}) with no vehicle, +12 V expected:"
            f" check the +-12 V supply and the driver stage fed by {self._driver}, the 1 kOhm"
            f" source resistor and the CP wire (no vehicle may be connected), and the high-level"
            f" detector into ADC CH{channel}",
        )
        self._proximity()
        if idle:
            await self._to_f_and_back(channel)

    def _proximity(self) -> None:
        if self._pp is None:
            return
        try:
            ohms = self._pilot.pp_resistance()
        except PinReadError:
            self._judge("proximity pilot open", False, SPI_ADVICE)
            return
        coding = cable_rating(ohms)
        shown = "open" if coding is PpFault.NO_PLUG else f"{ohms:.0f} ohm"
        self._say(f"connector {self._hw.connector_id}: proximity pilot {shown}")
        self._judge(
            "proximity pilot open",
            coding is PpFault.NO_PLUG,
            f"PP reads {shown} with no plug in the socket: check the 1 kOhm pull-up to 3V3 and"
            f" the PP wire into ADC CH{self._pp.channel} (a PP wire touching PE reads as a"
            " cable)",
        )

    async def _to_f_and_back(self, channel: int) -> None:
        number = self._hw.connector_id
        self._say(f"connector {number}: driving the pilot to -12 V (state F)")
        self._hw.set_unavailable(True)
        try:
            reached_f = await self._reaches(PilotState.F)
            self._judge(
                "control pilot drives -12 V",
                reached_f,
                f"the pilot reads {self._shown()} with {self._driver} low, -12 V expected:"
                f" check the driver's -12 V rail and its op-amp, and the detector into ADC"
                f" CH{channel}",
            )
        finally:
            self._hw.set_unavailable(False)
        self._say(f"connector {number}: back to +12 V (state A)")
        self._judge(
            "control pilot back to +12 V",
            await self._reaches(PilotState.A),
            f"the pilot reads {self._shown()} after {self._driver} went high again, +12 V"
            f" expected: check the driver stage and the detector into ADC CH{channel}",
        )

    def _shown(self) -> str:
        try:
            return f"{self._high():+.1f} V"
        except PinReadError:
            return "nothing (the ADC does not answer)"

    async def _reaches(self, state: PilotState) -> bool:
        """Wait, change by change, for the debounced pilot to read ``state``."""
        moved = asyncio.Event()
        previous = self._hw.on_change
        self._hw.on_change = moved.set
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        try:
            while self._hw.pilot_state != state.value:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                moved.clear()
                try:
                    await asyncio.wait_for(moved.wait(), remaining)
                except TimeoutError:
                    return self._hw.pilot_state == state.value
        finally:
            self._hw.on_change = previous
        return True


async def pilot_checks(
    hardware: ConnectorHardware,
    config: ConnectorConfig,
    *,
    where: Header,
    say: Callable[[str], None],
) -> list[Check]:
    """The pilot's checks; none where the connector has no pilot."""
    pilot = hardware.parts.pilot
    if pilot is None or config.pilot is None:
        return []
    check = PilotCheck(hardware, pilot, config, where, say)
    await check.run()
    return check.checks
