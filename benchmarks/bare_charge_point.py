"""The floor of the unlock benchmark: a charge point written directly with the ``ocpp`` package.

It boots, then answers every UnlockConnector ``Unlocked`` at once: no hardware, no store, no
status logic. What is left is the cost of the stack cp-pi is built on (websockets, the package's
framing, routing and schema validation), measured the same way as cp-pi.

    python -m benchmarks.bare_charge_point CSMS_URL CHARGE_POINT_ID [--thread-validation]

cp-pi validates schemas on the event loop (``ocpp.messages.ASYNC_VALIDATION = False``); so does
this floor, unless ``--thread-validation`` keeps the package's default of a thread pool.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import ocpp.messages
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, UnlockStatus
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol


class BareChargePoint(ChargePoint):  # type: ignore[misc]  # ocpp ships no type information
    @on(Action.unlock_connector)  # type: ignore[untyped-decorator]
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)


async def serve(csms_url: str, cp_id: str) -> None:
    async with connect(f"{csms_url}/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")]) as websocket:
        charge_point = BareChargePoint(cp_id, websocket)
        receiver = asyncio.create_task(charge_point.start())
        await charge_point.call(
            call.BootNotification(charge_point_model="bare", charge_point_vendor="benchmark")
        )
        await receiver


if __name__ == "__main__":
    ocpp.messages.ASYNC_VALIDATION = "--thread-validation" in sys.argv[3:]
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
