"""GetConfigurationMaxKeys is a limit the charge point keeps, not only a number it reports."""

from __future__ import annotations

import pytest

from cp_pi.app import Station
from cp_pi.csms.server import CallErrorReceived, CentralSystem
from tests.conftest import CP_ID


async def test_a_get_configuration_naming_more_keys_than_the_limit_is_a_callerror(
    station: Station, csms: CentralSystem
) -> None:
    answer = await csms.get_configuration(CP_ID, ["GetConfigurationMaxKeys"])
    limit = int(answer["configurationKey"][0]["value"])
    at_limit = ["HeartbeatInterval"] + [f"Unknown{n}" for n in range(limit - 1)]
    answer = await csms.get_configuration(CP_ID, at_limit)
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert len(answer["unknownKey"]) == limit - 1
    with pytest.raises(CallErrorReceived) as refused:
        await csms.get_configuration(CP_ID, [*at_limit, "MeterValueSampleInterval"])
    assert refused.value.code == "OccurenceConstraintViolation"
    assert "GetConfigurationMaxKeys is 50" in refused.value.description
    # Asking for nothing in particular is asking for everything, whatever the limit.
    assert len((await csms.get_configuration(CP_ID))["configurationKey"]) > 20
