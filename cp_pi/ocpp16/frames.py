"""OCPP 1.6 CALLERROR codes for frames the `ocpp` package rejects with other names.

The package speaks 2.0 in places: ``FormatViolation`` (1.6 says ``FormationViolation``),
``ProtocolError`` for a missing field (1.6 has ``OccurenceConstraintViolation``, misspelt as the
specification spells it), and it swaps NotImplemented and NotSupported for unknown actions. It
also drops frames it cannot unpack without answering. This module decides the 1.6 answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OccurenceConstraintViolationError,
    OCPPError,
    ProtocolError,
)
from ocpp.v16.enums import Action

CALL, CALLRESULT, CALLERROR = 2, 3, 4

#: OCPP-J: a unique id is at most 36 characters.
MAX_UNIQUE_ID = 36

#: Larger frames are refused unread: no OCPP 1.6 message a charge point takes comes near it, and
#: schema-validating megabytes would stall the event loop. (Beyond the websocket's own limit of
#: 1 MiB the connection closes and is redialled.)
MAX_FRAME_CHARS = 64 * 1024

#: When the unique id of a broken frame cannot be read, OCPP-J answers with this one.
UNKNOWN_UNIQUE_ID = "-1"

_KNOWN_ACTIONS = frozenset(action.value for action in Action)
_LEADING_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


@dataclass(frozen=True, slots=True)
class FrameError(Exception):
    """A frame that must be answered with this CALLERROR (or ignored when ``unique_id`` is None)."""

    unique_id: str | None
    code: str
    description: str

    def to_frame(self) -> list[Any]:
        return [CALLERROR, self.unique_id, self.code, self.description, {}]


def check_frame(text: str | bytes) -> list[Any]:
    """Parse a websocket message into an OCPP-J frame, or say which 1.6 CALLERROR it earns.

    Responses (CALLRESULT/CALLERROR) that are malformed are never answered: ``unique_id`` None.
    """
    if isinstance(text, bytes):
        raise FrameError(None, "FormationViolation", "binary frames are not OCPP-J")
    if len(text) > MAX_FRAME_CHARS:
        match = _LEADING_ID.match(text[:100])
        unique_id = match.group(1) if match else None
        raise FrameError(
            unique_id, "FormationViolation", f"frame over {MAX_FRAME_CHARS} characters"
        )
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as error:
        # Deep nesting (20,000 brackets fit in the size limit) exhausts the parser's recursion.
        match = _LEADING_ID.match(text)
        unique_id = match.group(1) if match else UNKNOWN_UNIQUE_ID
        reason = "nested too deeply" if isinstance(error, RecursionError) else "not valid JSON"
        raise FrameError(unique_id, "FormationViolation", f"message is {reason}") from None
    if not isinstance(frame, list) or not frame:
        raise FrameError(UNKNOWN_UNIQUE_ID, "FormationViolation", "message is not a JSON array")
    message_type = frame[0]
    unique_id = frame[1] if len(frame) > 1 and _valid_unique_id(frame[1]) else None
    if message_type in (CALLRESULT, CALLERROR) and not isinstance(message_type, bool):
        expected = 3 if message_type == CALLRESULT else 5
        if len(frame) != expected or unique_id is None:
            raise FrameError(None, "FormationViolation", "malformed response frame")
        return frame
    reply_id = unique_id if unique_id is not None else UNKNOWN_UNIQUE_ID
    if message_type != CALL or isinstance(message_type, bool):
        raise FrameError(reply_id, "FormationViolation", f"unknown message type {message_type!r}")
    if len(frame) != 4 or unique_id is None:
        raise FrameError(reply_id, "FormationViolation", "a CALL has 4 elements")
    if not isinstance(frame[2], str):
        raise FrameError(reply_id, "FormationViolation", "action must be a string")
    if not isinstance(frame[3], dict):
        raise FrameError(reply_id, "FormationViolation", "payload must be a JSON object")
    return frame


def _valid_unique_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_UNIQUE_ID


def unhandled_action(action: str) -> OCPPError:
    """1.6: NotImplemented for an action we do not know, NotSupported for one we chose not to do."""
    if action in _KNOWN_ACTIONS:
        return NotSupportedError(description=f"{action} is not supported here")
    return NotImplementedError(description=f"{action} is not an OCPP 1.6 action")


def to_ocpp16(error: OCPPError) -> OCPPError:
    """Rename the package's schema-validation errors to their OCPP 1.6 names."""
    if isinstance(error, FormatViolationError):
        return FormationViolationError(description=error.description, details=error.details)
    if isinstance(error, ProtocolError):
        return OccurenceConstraintViolationError(
            description=error.description, details=error.details
        )
    return error
