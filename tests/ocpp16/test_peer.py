"""The OCPP-J peer's protocol, driven synchronously: text in, one event out (no socket, no loop).

Both ends of cp-pi (the charge point's session and the embedded central system) run on it, so
these rules hold for both: a CALL is handled once even if repeated while in flight, an answer is
taken only for a CALL of ours still outstanding, and a broken frame earns its 1.6 CALLERROR.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ocpp.v16.enums import Action

from cp_pi.core.routing import after, on, routes
from cp_pi.ocpp16.peer import Answer, Broken, Dropped, PeerProtocol, Request


def receive(protocol: PeerProtocol, frame: list[Any] | str) -> Any:
    event, _ = protocol.receive(frame if isinstance(frame, str) else json.dumps(frame))
    return event


def test_a_call_is_a_request_to_handle() -> None:
    protocol = PeerProtocol()
    event = receive(protocol, [2, "c1", "UnlockConnector", {"connectorId": 1}])
    assert isinstance(event, Request)
    assert (event.call.unique_id, event.call.action, event.call.payload) == (
        "c1",
        "UnlockConnector",
        {"connectorId": 1},
    )


def test_a_repeat_of_a_call_being_handled_is_dropped_until_it_is_answered() -> None:
    protocol = PeerProtocol()
    assert isinstance(receive(protocol, [2, "c1", "Reset", {"type": "Soft"}]), Request)
    repeat = receive(protocol, [2, "c1", "Reset", {"type": "Soft"}])
    assert isinstance(repeat, Dropped)
    assert "repeat" in repeat.reason
    protocol.answered("c1")
    assert isinstance(receive(protocol, [2, "c1", "Reset", {"type": "Soft"}]), Request)


def test_the_answer_to_an_outstanding_call_names_its_action_and_is_taken_once() -> None:
    protocol = PeerProtocol()
    call = protocol.send_call("Heartbeat", {}, "h1")
    assert json.loads(call.to_json()) == [2, "h1", "Heartbeat", {}]
    assert protocol.outstanding == 1
    answer = receive(protocol, [3, "h1", {"currentTime": "2026-01-01T00:00:00Z"}])
    assert isinstance(answer, Answer)
    assert answer.action == "Heartbeat"
    assert answer.frame[2] == {"currentTime": "2026-01-01T00:00:00Z"}
    assert protocol.outstanding == 0
    again = receive(protocol, [3, "h1", {"currentTime": "2026-01-01T00:00:00Z"}])
    assert isinstance(again, Dropped)


def test_a_callerror_answers_its_call_too() -> None:
    protocol = PeerProtocol()
    protocol.send_call("Authorize", {"idTag": "T"}, "a1")
    answer = receive(protocol, [4, "a1", "InternalError", "down", {}])
    assert isinstance(answer, Answer)
    assert answer.frame[2] == "InternalError"


def test_answers_to_no_call_outstanding_are_dropped_at_once() -> None:
    protocol = PeerProtocol()
    assert isinstance(receive(protocol, [3, "never-sent", {}]), Dropped)
    protocol.send_call("Heartbeat", {}, "h1")
    protocol.give_up("h1")  # its wait timed out
    late = receive(protocol, [3, "h1", {"currentTime": "2026-01-01T00:00:00Z"}])
    assert isinstance(late, Dropped)
    assert "no CALL outstanding" in late.reason


def test_several_calls_may_be_outstanding_and_are_answered_in_any_order() -> None:
    protocol = PeerProtocol()
    protocol.send_call("Heartbeat", {}, "h1")
    protocol.send_call("StatusNotification", {}, "s1")
    assert receive(protocol, [3, "s1", {}]).action == "StatusNotification"
    assert receive(protocol, [3, "h1", {}]).action == "Heartbeat"


def test_one_unique_id_cannot_be_outstanding_twice() -> None:
    protocol = PeerProtocol()
    protocol.send_call("Heartbeat", {}, "h1")
    with pytest.raises(ValueError, match="h1"):
        protocol.send_call("Heartbeat", {}, "h1")


def test_the_lost_connection_lists_every_call_that_will_never_be_answered() -> None:
    protocol = PeerProtocol()
    protocol.send_call("StartTransaction", {}, "t1")
    protocol.send_call("Heartbeat", {}, "h1")
    assert protocol.connection_lost() == {"t1": "StartTransaction", "h1": "Heartbeat"}
    assert protocol.outstanding == 0
    assert isinstance(receive(protocol, [3, "t1", {}]), Dropped)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("not json", [4, "-1", "FormationViolation"]),
        ('[2, "x1", "Heartbeat"]', [4, "x1", "FormationViolation"]),
        ('[2, "x2", 7, {}]', [4, "x2", "FormationViolation"]),
        ('[9, "x3", "Heartbeat", {}]', [4, "x3", "FormationViolation"]),
        ('{"a": 1}', [4, "-1", "FormationViolation"]),
    ],
)
def test_a_broken_frame_earns_a_formation_violation(text: str, answer: list[Any]) -> None:
    event, frame = PeerProtocol().receive(text)
    assert frame is None
    assert isinstance(event, Broken)
    assert event.error.to_frame()[:3] == answer


def test_a_broken_answer_is_never_answered() -> None:
    protocol = PeerProtocol()
    protocol.send_call("Heartbeat", {}, "h1")
    event = receive(protocol, [3, "h1"])
    assert isinstance(event, Broken)
    assert event.error.unique_id is None
    assert protocol.outstanding == 1  # still awaited: a good answer may follow


def test_a_binary_message_is_no_frame() -> None:
    event, _ = PeerProtocol().receive(b"[2]")
    assert isinstance(event, Broken)


# -- routing: one @on method per action -----------------------------------------------------------


class Handlers:
    @on(Action.heartbeat)
    def heartbeat(self, **_: Any) -> str:
        return "beat"


class Hooks:
    @after(Action.heartbeat)
    def after_heartbeat(self, **_: Any) -> str:
        return "after"


def test_routes_bind_the_marked_methods_of_every_owner() -> None:
    found = routes(Handlers(), Hooks())
    assert set(found) == {"Heartbeat"}
    route = found["Heartbeat"]
    assert route.on is not None
    assert route.after is not None
    assert (route.on(), route.after()) == ("beat", "after")


def test_two_handlers_for_one_action_are_refused() -> None:
    with pytest.raises(ValueError, match="Heartbeat"):
        routes(Handlers(), Handlers())
