"""Whatever arrives on the websocket, the charge point stays up and keeps answering correctly.

Hypothesis generates frames (broken text, JSON of every shape, CALLs with wrong payloads and
unknown actions, responses nobody asked for); after each batch a valid request must still get
its right answer, and every CALL the batch contained must have been answered.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cp_pi.app import running_station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, fast_settings

_T = TypeVar("_T")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Actions a hostile or buggy CSMS might send; Reset and ChangeAvailability are left out because a
#: valid one legitimately takes the charge point away for a moment.
actions = st.sampled_from(
    ["UnlockConnector", "RemoteStartTransaction", "RemoteStopTransaction", "GetConfiguration",
     "ChangeConfiguration", "TriggerMessage", "ClearCache", "DataTransfer", "ReserveNow",
     "FlyToTheMoon", "Heartbeat", ""]
)  # fmt: skip
fields = st.sampled_from(
    ["connectorId", "idTag", "key", "value", "requestedMessage", "vendorId", "transactionId", "x"]
)
calls = st.tuples(
    st.text(min_size=1, max_size=36).filter(lambda s: s != "probe"),
    actions,
    st.dictionaries(fields, json_values, max_size=3),
)
frames = st.one_of(
    calls.map(lambda c: json.dumps([2, *c])),
    st.text(max_size=80),
    json_values.map(json.dumps),
    st.tuples(st.sampled_from([3, 4]), st.text(max_size=8), json_values).map(json.dumps),
)


class Rig:
    """One CSMS and one charge point on an event loop of their own, for every example."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stack = AsyncExitStack()
        self.csms: CentralSystem = self.run(self._start(data_dir))

    async def _start(self, data_dir: Path) -> CentralSystem:
        csms = await self._stack.enter_async_context(CentralSystem(port=0))
        settings = fast_settings(data_dir, csms.url)
        await self._stack.enter_async_context(running_station(settings, response_timeout=5))
        await csms.wait_for_call(CP_ID, "StatusNotification")
        return csms

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self._stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    shared = Rig(tmp_path_factory.mktemp("hostile"))
    yield shared
    shared.close()


async def throw(csms: CentralSystem, frames: list[str]) -> None:
    start = len(csms.frames)
    for frame in frames:
        await csms.send_raw(CP_ID, frame)
    for unique_id in call_ids(frames):
        await csms.journal.wait_for(
            lambda r, uid=unique_id: r.direction == "rx" and r.frame[:2] in ([3, uid], [4, uid]),
            after=start,
            timeout=10,
            what=f"answer to CALL {unique_id!r}",
        )
    answer = await csms.get_configuration(CP_ID, ["NumberOfConnectors"], timeout=10)
    assert answer["configurationKey"] == [
        {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
    ]


def call_ids(sent: list[str]) -> set[str]:
    """Unique ids of the well-formed-enough CALLs in a batch: each must get an answer."""
    ids = set()
    for text in sent:
        try:
            frame = json.loads(text)
        except ValueError:
            continue
        if (
            isinstance(frame, list)
            and len(frame) == 4
            and frame[0] == 2
            and isinstance(frame[1], str)
            and 0 < len(frame[1]) <= 36
        ):
            ids.add(frame[1])
    return ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_hostile_frames_never_stop_the_charge_point(batch: list[str], rig: Rig) -> None:
    rig.run(throw(rig.csms, batch))
