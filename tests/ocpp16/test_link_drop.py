"""A CALL in flight when the link drops fails at once, naming its action, on both ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cp_pi.csms.server import CentralSystem
from tests.csms.helpers import CP_ID, connected
from tests.ocpp16.helpers import until
from tests.ocpp16.raw_csms import RawCsms
from tests.ocpp16.test_bounded_work import charge_point, session_of

#: Far longer than the test may take: the failure must come from the drop, not a timeout.
PATIENT = 60


async def test_a_call_in_flight_fails_at_once_when_the_link_drops(tmp_path: Path) -> None:
    async with (
        RawCsms() as raw,
        charge_point(tmp_path, raw, response_timeout=PATIENT) as station,
    ):
        raw.answers["Heartbeat"] = lambda _: None  # never answered
        session = session_of(station)
        sent = raw.count("Heartbeat")
        in_flight = asyncio.create_task(session.request("Heartbeat", {}))
        await raw.until(lambda: raw.count("Heartbeat") > sent)
        assert raw.connection is not None
        await raw.connection.close()
        loop = asyncio.get_running_loop()
        dropped_at = loop.time()
        with pytest.raises(ConnectionError, match="Heartbeat"):
            await in_flight
        assert loop.time() - dropped_at < PATIENT / 10
        # The link redials and the next CALL is answered as usual.
        raw.answers["Heartbeat"] = lambda _: {"currentTime": "2026-01-01T00:00:00Z"}
        cp = station.charger
        await until(station, lambda: not cp.csms_connected)
        await until(station, lambda: cp.csms_connected)
        answer = await station.charger.outbox.send("Heartbeat", {})
        assert answer == {"currentTime": "2026-01-01T00:00:00Z"}


async def test_a_command_in_flight_fails_at_once_when_the_charge_point_goes(
    csms: CentralSystem,
) -> None:
    async with connected(csms) as cp:
        cp.script("UnlockConnector", None)  # never answered
        unlock = asyncio.create_task(csms.unlock_connector(CP_ID, 1, timeout=PATIENT))
        await csms.journal.wait_for(
            lambda r: r.direction == "tx", after=0, timeout=5, what="the UnlockConnector CALL"
        )
        await cp._connection.close()
        with pytest.raises(ConnectionError, match="UnlockConnector"):
            await unlock
