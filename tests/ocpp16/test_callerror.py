"""Malformed requests get OCPP 1.6 CALLERRORs and the session keeps answering."""

from __future__ import annotations

import pytest

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID


@pytest.mark.parametrize(
    ("text", "unique_id", "code"),
    [
        ('[2,"e1","UnlockConnector",{"connectorId":"1"}]', "e1", "TypeConstraintViolation"),
        ('[2,"e2","UnlockConnector",{}]', "e2", "OccurenceConstraintViolation"),
        ('[2,"e3","UnlockConnector",{"connectorId":1,"x":2}]', "e3", "FormationViolation"),
        ('[2,"e4","FlyToTheMoon",{}]', "e4", "NotImplemented"),
        ('[2,"e5","GetLog",{}]', "e5", "NotSupported"),
        ('[2,"e6","UnlockConnector",{"connectorId":', "e6", "FormationViolation"),
        ('[2,"e7","UnlockConnector"]', "e7", "FormationViolation"),
    ],
)
async def test_bad_requests_get_the_ocpp16_error_and_the_session_lives_on(
    station: Station, csms: CentralSystem, text: str, unique_id: str, code: str
) -> None:
    answer = await csms.send_raw(CP_ID, text, unique_id=unique_id, timeout=5)
    assert answer is not None
    assert answer[:3] == [4, unique_id, code]
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}


async def test_responses_nobody_asked_for_are_ignored(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.send_raw(
        CP_ID, '[3,"never-asked",{}]', unique_id="never-asked", timeout=0.5
    )
    assert answer is None
    assert await csms.unlock_connector(CP_ID, 1) == {"status": "Unlocked"}
