"""The `ocpp` package's endpoint, answering in OCPP 1.6's own words; both ends of cp-pi use it."""

from __future__ import annotations

import json

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.v16 import ChargePoint as _OcppEndpoint

from cp_pi.ocpp16.errors import CALLERROR, to_ocpp16, unhandled_action

# Schema validation is a few dictionary look-ups; the package's default hands each one to a
# thread pool, which costs more than the validation and adds latency to every frame.
ocpp.messages.ASYNC_VALIDATION = False


class Ocpp16Peer(_OcppEndpoint):  # type: ignore[misc]  # the package ships no type information
    async def answer_call(self, message: Call) -> None:
        """Run the handler; a refusal goes out under its OCPP 1.6 name, not the package's."""
        try:
            if message.action not in self.route_map:
                raise unhandled_action(message.action)
            await self._handle_call(message)
        except OCPPError as error:
            error = to_ocpp16(error)
            self.logger.warning(
                "%s: CALLERROR %s for %s: %s",
                self.id,
                error.code,
                message.action,
                error.description,
            )
            frame = [CALLERROR, message.unique_id, error.code, error.description, {}]
            await self._send(json.dumps(frame))
