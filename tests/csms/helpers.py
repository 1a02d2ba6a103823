"""A small charge point, written on the `ocpp` package, that talks to the central system over
a real websocket on 127.0.0.1.

It answers every command the central system can send with a fixed, valid answer, unless a test
scripts another answer (a CALLERROR, a payload outside the schema, or silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from cp_pi.csms.server import CentralSystem

CP_ID = "cp-1"
OCPP16 = [Subprotocol("ocpp1.6")]

Answer = Callable[[str], list[Any]]
"""Builds the answer frame from the request's unique id."""


def callresult(payload: dict[str, Any]) -> Answer:
    return lambda unique_id: [3, unique_id, payload]


def callerror(code: str) -> Answer:
    return lambda unique_id: [4, unique_id, code, f"{code} from the test charge point", {}]


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def handles(action: Action) -> Callable[[_Handler], _Handler]:
    """`ocpp.routing.on` with a type: the package ships no type information."""
    decorator: Callable[[_Handler], _Handler] = on(action)
    return decorator


class SmallChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=5)
        self.requests: list[list[Any]] = []
        """Every CALL the central system sent, decoded."""
        self._scripted: dict[str, Answer | None] = {}

    def script(self, action: str, answer: Answer | None) -> None:
        """Answer `action` with `answer` instead of the handler; None never answers."""
        self._scripted[action] = answer

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
            self.requests.append(frame)
            if frame[2] in self._scripted:
                answer = self._scripted[frame[2]]
                if answer is not None:
                    await self._send(json.dumps(answer(frame[1])))
                return
        await super().route_message(raw_msg)

    async def boot(self) -> Any:
        request = call.BootNotification(charge_point_vendor="test", charge_point_model="small")
        return await self.call(request, suppress=False)

    async def send(self, payload: Any) -> Any:
        """A CALL of the charge point's own; the CALLRESULT payload as the package parses it."""
        return await self.call(payload, suppress=False)

    @handles(Action.unlock_connector)
    def _unlock(self, **_: Any) -> Any:
        return call_result.UnlockConnector(status="Unlocked")

    @handles(Action.remote_start_transaction)
    def _remote_start(self, **_: Any) -> Any:
        return call_result.RemoteStartTransaction(status="Accepted")

    @handles(Action.remote_stop_transaction)
    def _remote_stop(self, **_: Any) -> Any:
        return call_result.RemoteStopTransaction(status="Accepted")

    @handles(Action.reset)
    def _reset(self, **_: Any) -> Any:
        return call_result.Reset(status="Accepted")

    @handles(Action.change_availability)
    def _change_availability(self, **_: Any) -> Any:
        return call_result.ChangeAvailability(status="Accepted")

    @handles(Action.change_configuration)
    def _change_configuration(self, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status="Accepted")

    @handles(Action.get_configuration)
    def _get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        keys = key or ["HeartbeatInterval"]
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": "300"} for k in keys]
        )

    @handles(Action.clear_cache)
    def _clear_cache(self, **_: Any) -> Any:
        return call_result.ClearCache(status="Accepted")

    @handles(Action.trigger_message)
    def _trigger_message(self, **_: Any) -> Any:
        return call_result.TriggerMessage(status="Accepted")

    @handles(Action.data_transfer)
    def _data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status="Accepted", data="pong")


@contextlib.asynccontextmanager
async def connected(csms: CentralSystem, cp_id: str = CP_ID) -> AsyncIterator[SmallChargePoint]:
    """A charge point connected to `csms`, once the central system has registered it."""
    async with connect(f"{csms.url}/{cp_id}", subprotocols=OCPP16) as websocket:
        charge_point = SmallChargePoint(cp_id, websocket)
        receiving = asyncio.create_task(charge_point.start())
        try:
            await csms.wait_for_charge_point(cp_id)
            yield charge_point
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await receiving
