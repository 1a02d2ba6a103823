"""One OCPP 1.6J session with the central system: the charge point's end of the shared peer.

What :class:`~cp_pi.ocpp16.peer.Peer` does for both ends (one receive loop, frame checking, a
future per CALL of ours) is not repeated here. This end adds, for the charge point's sake:

* each CSMS request is handled in its own task, so a lock drive of a few seconds does not stop
  the next frame from being read, but only ``max_requests`` at once, so a central system that
  sends without waiting is slowed down by TCP instead of the charge point queueing work;
* the handlers are the ``@on`` methods of :class:`~cp_pi.station.requests.CsmsRequests`, called
  directly; the outbox is held while one runs, so its follow-up CALLs leave after the answer;
* frames are shown to the bench and the frame log with secrets hidden.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import remove_nones
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.v16.enums import Action, ConfigurationKey

from cp_pi.core.routing import after
from cp_pi.ocpp16.peer import CallErrorReceived, FrameObserver, InvalidAnswer, Peer
from cp_pi.ocpp16.wire import redact, redact_raw
from cp_pi.station.outbox import CallError as CallErrorAnswer

if TYPE_CHECKING:
    from cp_pi.station.charger import Charger

log = logging.getLogger("cp_pi.ocpp")

__all__ = ["MAX_REQUESTS", "FrameObserver", "OcppSession"]

#: CSMS requests handled at once unless configured otherwise (``max_requests_in_flight``).
MAX_REQUESTS = 4

#: The CALLERROR codes OCPP defines; another is reported as "Unknown".
_KNOWN_CODES = frozenset(error.code for error in OCPPError.__subclasses__())


class OcppSession(Peer):
    def __init__(
        self,
        charger: Charger,
        connection: Any,
        *,
        response_timeout: float = 30,
        on_frame: FrameObserver | None = None,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        super().__init__(
            charger.id,
            connection,
            handlers=(charger.requests, charger.smart_charging),
            response_timeout=response_timeout,
            max_requests=max_requests,
            logger=log,
        )
        self._cp = charger
        self._on_frame = on_frame

    def observe(self, direction: str, text: str | bytes, frame: list[Any] | None) -> None:
        if self._on_frame is not None:
            shown = redact(frame) if frame is not None else [repr(redact_raw(text))]
            self._on_frame(direction, shown)

    @contextlib.contextmanager
    def handling(self, message: Call) -> Iterator[None]:
        with self._cp.outbox.hold():
            yield

    # -- the outbox's sender -------------------------------------------------------------------

    async def send_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox's way out: the answer's payload, or the CALLERROR as the outbox knows it."""
        try:
            return await self.request(action, remove_nones(payload))
        except CallErrorReceived as error:
            if error.code not in _KNOWN_CODES:
                description = f"Error code '{error.code}' is not defined by the OCPP specification"
                raise CallErrorAnswer("Unknown", description) from None
            raise CallErrorAnswer(error.code, error.description) from None
        except InvalidAnswer as error:
            raise CallErrorAnswer(error.code, error.description) from None
        except OCPPError as error:  # our own payload outside the schema
            raise CallErrorAnswer(error.code, error.description) from None

    # -- what the link itself does after an answer ---------------------------------------------

    @after(Action.change_configuration)
    async def _after_change_configuration(self, key: str, value: str, **_: Any) -> None:
        """TC_073: a new AuthorizationKey is used at once. Its CALLRESULT is out by now, so the
        link closes, and the link dials again with the new key, and only with it."""
        if (
            key == ConfigurationKey.authorization_key
            and value == self._cp.configuration.authorization_key()
        ):
            log.warning("the central system changed the AuthorizationKey: reconnecting with it")
            await self.connection.close(1000, "new credentials")
