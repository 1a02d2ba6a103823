"""Pieces of the OCPP 1.6J wire shared by the charge point and the embedded central system."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ocpp.routing import on as _untyped_on
from ocpp.v16.enums import Action

Handler = TypeVar("Handler", bound=Callable[..., Any])


def on(action: Action) -> Callable[[Handler], Handler]:
    """`ocpp.routing.on` with a type: the package ships no type information."""
    decorator: Callable[[Handler], Handler] = _untyped_on(action)
    return decorator


def utc_now() -> str:
    """UTC with a "Z", the form OCPP 1.6 examples and most peers expect."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Configuration keys whose values are secrets: never in a log line, a trace or the bench.
SECRET_KEYS = frozenset({"AuthorizationKey"})


def redact(frame: list[Any]) -> list[Any]:
    """The frame as logs and traces may show it: a secret key's new value hidden."""
    if (
        len(frame) == 4
        and frame[0] == 2
        and frame[2] == "ChangeConfiguration"
        and isinstance(frame[3], dict)
        and isinstance(frame[3].get("key"), str)
        and frame[3]["key"] in SECRET_KEYS
    ):
        return [*frame[:3], {**frame[3], "value": "***"}]
    return frame
