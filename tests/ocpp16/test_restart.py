"""What survives a restart: a transaction cut off by a crash or a power cut is closed, not lost."""

from __future__ import annotations

from cp_pi.csms.server import CentralSystem
from tests.conftest import StationFactory
from tests.ocpp16.helpers import call_index, calls, mark
from tests.ocpp16.test_unlock_connector import start_charging


async def test_a_transaction_open_at_restart_ends_with_power_loss_after_boot(
    make_station: StationFactory, csms: CentralSystem
) -> None:
    """OCTT TC_032_2_CS (Power failure: the transaction is stopped after boot)."""
    async with make_station() as station:
        transaction_id = await start_charging(station, csms)
        # The process goes away mid-charge: no StopTransaction is sent.
    assert calls(csms, "StopTransaction") == []
    start = mark(csms)
    async with make_station(wait_for_boot=False) as station:
        boot = await call_index(csms, "BootNotification", after=start)
        stop = await call_index(csms, "StopTransaction", after=start, reason="PowerLoss")
        assert boot < stop
        assert csms.frames[stop].frame[3]["transactionId"] == transaction_id
        assert not station.connectors[1].hardware.contactor_closed
    assert csms.transactions[transaction_id].reason == "PowerLoss"
    assert len(calls(csms, "StopTransaction")) == 1
