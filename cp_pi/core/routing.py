"""Which method answers which OCPP action: an ``@on`` mark per handler, as in the `ocpp` package.

A handler class marks its methods with ``@on(Action.x)`` (and ``@after(Action.x)`` for work that
must wait until the answer is out); the peer collects the marks of the objects it is given with
:func:`routes`. Adding a request is one marked method; nothing else lists the actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])

#: The attributes ``on`` and ``after`` mark a handler with: the action it serves.
_ON_MARK = "ocpp16_on"
_AFTER_MARK = "ocpp16_after"


def on(action: Enum) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of the CALL ``action``, as the `ocpp` package's ``@on``:
    it receives the payload's fields as snake_case keywords and returns a ``call_result``
    payload. The peer finds every marked method of the objects it is given."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ON_MARK, action.value)
        return handler

    return mark


def after(action: Enum) -> Callable[[Handler], Handler]:
    """Mark a method to run once the CALLRESULT of ``action`` is sent (same keywords)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _AFTER_MARK, action.value)
        return handler

    return mark


@dataclass(frozen=True, slots=True)
class Route:
    """What answers one action: its handler, and what runs once the answer is out."""

    on: Callable[..., Any] | None = None
    after: Callable[..., Any] | None = None


def routes(*owners: object) -> dict[str, Route]:
    """Action -> route, from the ``@on``/``@after`` methods of ``owners``, bound to them.

    One action has one handler: a second one is a mistake, reported at once."""
    found: dict[str, Route] = {}
    for owner in owners:
        for name in dir(type(owner)):
            function = getattr(type(owner), name, None)
            for mark, field in ((_ON_MARK, "on"), (_AFTER_MARK, "after")):
                action = getattr(function, mark, None)
                if action is None:
                    continue
                route = found.get(action, Route())
                if getattr(route, field) is not None:
                    raise ValueError(f"two @{field} handlers for {action}")
                bound = getattr(owner, name)
                found[action] = (
                    Route(bound, route.after) if field == "on" else Route(route.on, bound)
                )
    return found
