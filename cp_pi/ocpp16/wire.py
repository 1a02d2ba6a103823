"""Pieces of the OCPP 1.6J wire shared by the charge point and the embedded central system."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from ocpp.messages import Call
from ocpp.v16.enums import ConfigurationKey
from websockets.frames import Frame

CALL = 2


def utc_now() -> str:
    """UTC with a "Z", the form OCPP 1.6 examples and most peers expect."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Configuration keys whose values are secrets: never in a log line, a trace or the bench.
SECRET_KEYS = frozenset({ConfigurationKey.authorization_key.value})
_SECRET_NAMES = tuple(name.lower() for name in SECRET_KEYS)
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: The start of a CALL up to its action: all of a broken frame a log may show once it mentions a
#: secret (an object's members come in any order, so the secret may sit anywhere after it).
_CALL_HEAD = re.compile(r'\s*\[\s*2\s*,\s*"[^"\\]{1,36}"\s*,\s*"[A-Za-z]{1,50}"')
_PLAIN_NAME = re.compile(r"[A-Za-z]{1,50}")
HIDDEN = "***"


_HEX_KEY = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")


def basic_password(authorization_key: str) -> bytes:
    """The HTTP Basic password an AuthorizationKey stands for.

    The OCPP 1.6 security whitepaper has the key travel in ChangeConfiguration as the hexadecimal
    representation of a 16 to 20 byte password, and OCTT (TC_073, TC_085) expects the decoded
    bytes in the Basic header: 32 to 40 hexadecimal digits are decoded. Any other key (a
    readable password from the configuration file) is the password as it is, in UTF-8.
    """
    if _HEX_KEY.fullmatch(authorization_key):
        return bytes.fromhex(authorization_key)
    return authorization_key.encode()


def basic_authorization(user: str, authorization_key: str) -> str:
    """The ``Authorization`` header value for HTTP Basic authentication with this key."""
    credentials = user.encode() + b":" + basic_password(authorization_key)
    return "Basic " + base64.b64encode(credentials).decode()


def basic_credentials(header: str) -> tuple[str, bytes] | None:
    """(user, password bytes) of a Basic ``Authorization`` header; None when it is not one.
    The password stays bytes: a key decoded from hexadecimal need not be text."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        return (user.decode(), password) if colon else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def mentions_secret(text: str) -> bool:
    """Whether ``text`` names a secret key, in any case, JSON escapes read as what they mean."""
    lowered = _JSON_ESCAPE.sub(lambda match: chr(int(match[1], 16)), text).lower()
    return any(name in lowered for name in _SECRET_NAMES)


def redact(frame: list[Any]) -> list[Any]:
    """The frame as logs and traces may show it: a CALL that names a secret key keeps its
    shape and field names, and every value but a plain key name is hidden, whatever else is
    wrong with it (an extra field, a wrong type). The frame itself is left untouched."""
    if not frame or frame[0] != CALL or not mentions_secret(json.dumps(frame)):
        return frame
    head = [frame[0], frame[1] if len(frame) > 1 else None]
    if len(frame) > 2:
        action = frame[2]
        head.append(action if isinstance(action, str) and _PLAIN_NAME.fullmatch(action) else HIDDEN)
    payload = frame[3] if len(frame) > 3 else None
    if isinstance(payload, dict) and all(_PLAIN_NAME.fullmatch(name) for name in payload):
        shown: Any = {
            name: value
            if name == "key" and isinstance(value, str) and _PLAIN_NAME.fullmatch(value)
            else HIDDEN
            for name, value in payload.items()
        }
    else:
        shown = HIDDEN
    return [*head, *([shown] if len(frame) > 3 else []), *[HIDDEN] * (len(frame) - 4)]


def redact_text(text: str) -> str:
    """Raw text as logs and traces may show it: a message that names a secret key anywhere,
    parseable or not, shows at most the head of its CALL."""
    if not mentions_secret(text):
        return text
    head = _CALL_HEAD.match(text)
    return f"{head[0] if head else ''}{HIDDEN} ({len(text)} characters naming a secret key)"


def redact_raw(message: str | bytes) -> str | bytes:
    """A websocket message that is not a frame (broken JSON, binary), as logs may show it."""
    text = message if isinstance(message, str) else message.decode("latin-1")
    return redact_text(text) if mentions_secret(text) else message


class HideSecrets(logging.Filter):
    """Keeps secrets out of the lines a library logs: the websocket library's DEBUG lines
    show every handshake header (``Authorization: Basic`` is the AuthorizationKey in base64)
    and every frame (a ChangeConfiguration carries the new key), and the `ocpp` package logs
    a whole request when its handler fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if len(args) == 2 and str(args[0]).lower() == "authorization":
                record.args = (args[0], HIDDEN)
            else:
                record.args = tuple(_hidden(arg) for arg in args)
        return True


def _hidden(arg: object) -> object:
    if isinstance(arg, Frame):
        text = bytes(arg.data).decode(errors="replace")
        return f"{arg.opcode.name} {redact_text(text)!r}" if mentions_secret(text) else arg
    if isinstance(arg, Call):
        return redact([CALL, arg.unique_id, arg.action, arg.payload])
    return arg


def hide_secrets_in(*logger_names: str) -> None:
    """Put :class:`HideSecrets` on these loggers, once each."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideSecrets) for f in logger.filters):
            logger.addFilter(HideSecrets())
