"""BootNotification, status after boot, heartbeat interval."""

from __future__ import annotations

from cp_pi import __version__
from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, StationFactory
from tests.ocpp16.helpers import calls, mark, status_reached


async def test_boot_announces_the_charge_point_then_every_connector(
    station: Station, csms: CentralSystem
) -> None:
    """OCTT TC_001_CS (Cold boot: every connector and connector 0 Available)."""
    boot = calls(csms, "BootNotification")[0]
    assert boot == {
        "chargePointVendor": "cp-pi",
        "chargePointModel": "cp-pi",
        "firmwareVersion": __version__,
    }
    await status_reached(csms, "Available", after=0, connector=0)
    await status_reached(csms, "Available", after=0, connector=1)


async def test_accepted_boot_sets_the_heartbeat_interval(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.get_configuration(CP_ID, ["HeartbeatInterval"])
    assert answer["configurationKey"][0]["value"] == "300"


async def test_pending_boot_is_retried_and_nothing_else_is_sent_meanwhile(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    """OCTT TC_002_CS (Cold boot, Pending)."""
    csms.boot_status = "Pending"
    csms.heartbeat_interval = 1
    start = mark(csms)
    async with make_station(wait_for_boot=False):
        first = await csms.wait_for_call(CP_ID, "BootNotification", after=start)
        second = await csms.wait_for_call(
            CP_ID, "BootNotification", after=csms.frames.index(first) + 1
        )
        sent_between = [
            r.frame[2]
            for r in csms.frames[csms.frames.index(first) : csms.frames.index(second)]
            if r.direction == "rx" and r.frame[0] == 2
        ]
        assert sent_between == ["BootNotification"]
        csms.boot_status = "Accepted"
        await status_reached(csms, "Available", after=csms.frames.index(second))
