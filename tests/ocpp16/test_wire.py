"""What logs and traces may show of a frame."""

from __future__ import annotations

from typing import Any

import pytest

from cp_pi.ocpp16.wire import redact


def test_a_new_authorization_key_is_hidden() -> None:
    frame = [2, "1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "secret-secret-1"}]
    assert redact(frame) == [
        2,
        "1",
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": "***"},
    ]
    assert frame[3]["value"] == "secret-secret-1"  # the frame itself is untouched


@pytest.mark.parametrize(
    "frame",
    [
        [2, "1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}],
        [2, "0", "ChangeConfiguration", {"connectorId": None, "key": []}],  # found by hypothesis
        [3, "1", {"status": "Accepted"}],
        [],
    ],
)
def test_other_frames_pass_unchanged(frame: list[Any]) -> None:
    assert redact(frame) == frame
