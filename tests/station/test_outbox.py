"""The outbox as the central system sees it: what a burst of requests puts on the wire."""

from __future__ import annotations

from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, StationFactory
from tests.ocpp16.helpers import call_index, calls, mark, status_reached


async def test_a_burst_of_heartbeat_triggers_sends_one_heartbeat_not_a_backlog(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    async with make_station(response_timeout=1) as station:
        csms.ignore_next("Heartbeat")
        start = mark(csms)
        await csms.trigger_message(CP_ID, "Heartbeat")
        unanswered = await call_index(csms, "Heartbeat", after=start)
        # While that Heartbeat waits for an answer that never comes, the triggers pile up.
        for _ in range(20):
            assert (await csms.trigger_message(CP_ID, "Heartbeat")) == {"status": "Accepted"}
        await csms.trigger_message(CP_ID, "StatusNotification", connector_id=1)

        answered = await call_index(csms, "Heartbeat", after=unanswered + 1)
        await status_reached(csms, "Available", after=answered)
        assert len(calls(csms, "Heartbeat", after=start)) == 2
        assert station.charge_point.csms_connected
