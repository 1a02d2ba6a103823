"""Which OCPP 1.6 CALLERROR a malformed frame earns, before any handler sees it."""

from __future__ import annotations

import pytest
from ocpp.exceptions import FormatViolationError, ProtocolError

from cp_pi.ocpp16.frames import FrameError, check_frame, to_ocpp16, unhandled_action


def rejection(text: str | bytes) -> FrameError:
    with pytest.raises(FrameError) as caught:
        check_frame(text)
    return caught.value


def test_a_good_call_passes() -> None:
    assert check_frame('[2,"42","UnlockConnector",{"connectorId":1}]') == [
        2,
        "42",
        "UnlockConnector",
        {"connectorId": 1},
    ]


def test_broken_json_keeps_the_unique_id_when_it_can_be_read() -> None:
    error = rejection('[2,"abc","UnlockConnector",{"connectorId":')
    assert (error.unique_id, error.code) == ("abc", "FormationViolation")


def test_broken_json_without_an_id_is_answered_to_minus_one() -> None:
    assert rejection("{{{").unique_id == "-1"


@pytest.mark.parametrize(
    "text",
    [
        '{"not": "an array"}',
        "[]",
        '[7,"1","Heartbeat",{}]',
        '[2,"1","Heartbeat"]',
        '[2,"1","Heartbeat",{},"extra"]',
        '[2,"1",5,{}]',
        '[2,"1","Heartbeat",[]]',
        '[2,"' + "x" * 37 + '","Heartbeat",{}]',
    ],
)
def test_malformed_calls_are_formation_violations(text: str) -> None:
    assert rejection(text).code == "FormationViolation"


def test_malformed_responses_are_never_answered() -> None:
    assert rejection('[3,"1"]').unique_id is None
    assert rejection('[4,"1","GenericError"]').unique_id is None


def test_binary_frames_are_not_answered() -> None:
    assert rejection(b"\x00\x01").unique_id is None


def test_unknown_action_is_not_implemented_and_known_unhandled_is_not_supported() -> None:
    assert unhandled_action("FlyToTheMoon").code == "NotImplemented"
    assert unhandled_action("GetLog").code == "NotSupported"


def test_schema_errors_get_their_ocpp16_names() -> None:
    assert to_ocpp16(FormatViolationError()).code == "FormationViolation"
    assert to_ocpp16(ProtocolError()).code == "OccurenceConstraintViolation"


def test_an_oversize_frame_is_refused_unread() -> None:
    error = rejection('[2,"big","DataTransfer",{"vendorId":"x","data":"' + "x" * 70_000 + '"}]')
    assert (error.unique_id, error.code) == ("big", "FormationViolation")
