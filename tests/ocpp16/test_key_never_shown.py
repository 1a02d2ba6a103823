"""The AuthorizationKey never reaches a log line or the bench, at any level, whatever carries it.

The logs are read as an operator would read them: every record of every logger at DEBUG,
formatted (with its traceback, if any), searched for the key and for the base64 of the
``Authorization: Basic`` header that carries it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cp_pi.app import Station, running_station
from cp_pi.config import BenchConfig, LogConfig, SecurityConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.ocpp16.wire import redact, redact_text
from tests.conftest import CP_ID, fast_settings
from tests.ocpp16.helpers import mark

KEY = "0123456789abcdef0123"
NEW_KEY = "NewSecret-9876543210zz"
FORMATTER = logging.Formatter("%(name)s %(levelname)s %(message)s")


def forms(key: str) -> list[str]:
    """The key as it may leak: itself, and the header's base64 of ``id:key`` (and of the key)."""
    return [
        key,
        base64.b64encode(f"{CP_ID}:{key}".encode()).decode(),
        base64.b64encode(key.encode()).decode(),
    ]


def leaks(caplog: pytest.LogCaptureFixture, *keys: str) -> list[str]:
    lines = [FORMATTER.format(record) for record in caplog.records]
    return [line for line in lines for key in keys for form in forms(key) if form in line]


@asynccontextmanager
async def keyed_station(tmp_path: Path, csms: CentralSystem) -> AsyncIterator[Station]:
    settings = fast_settings(tmp_path / "data", csms.url).model_copy(
        update={
            "security": SecurityConfig(authorization_key=KEY),
            "bench": BenchConfig(port=0),
            "log": LogConfig(ocpp_frames=True),  # the frame log too
        }
    )
    async with running_station(settings, response_timeout=5, bench=True) as station:
        await csms.wait_for_call(CP_ID, "StatusNotification")
        yield station


def bench_view(station: Station) -> str:
    assert station.bench is not None
    return json.dumps(station.bench.state()) + json.dumps(list(station.bench._frames))


async def test_the_key_is_not_logged_at_debug_in_the_handshake_nor_in_a_key_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        CentralSystem(port=0, passwords={CP_ID: KEY}) as csms,
        keyed_station(tmp_path, csms) as station,
    ):
        answer = await csms.change_configuration(CP_ID, "AuthorizationKey", NEW_KEY)
        assert answer == {"status": "Accepted"}
        shown = bench_view(station)
    # The handshake was logged at DEBUG (the test would prove nothing otherwise) ...
    assert any("Authorization" in record.getMessage() for record in caplog.records)
    assert any("ChangeConfiguration" in record.getMessage() for record in caplog.records)
    # ... but neither key, in any form.
    assert leaks(caplog, KEY, NEW_KEY) == []
    assert all(form not in shown for key in (KEY, NEW_KEY) for form in forms(key))


#: ChangeConfiguration frames for the AuthorizationKey that are wrong in every way a CSMS
#: might get one wrong; each carries NEW_KEY somewhere. (unique id, text)
MALFORMED = [
    ("m1", '[2,"m1","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s","x":1}]'),
    ("m2", '[2,"m2","ChangeConfiguration",{"key":"AuthorizationKey","value":["%s"]}]'),
    ("m3", '[2,"m3","ChangeConfiguration",{"value":"%s","key":"AuthorizationKey"'),
    ("m4", '[2,"m4","ChangeConfiguration",{"key":"authorizationkey","value":"%s"}]'),
    ("m5", '[2,"m5","ChangeConfiguration",{"key":"Authorization\\u004bey","value":"%s","x":1}]'),
    ("m6", '[2,"m6","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s"},"x"]'),
    ("m7", '[2,"m7","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s' + "x" * 600),
    ("m8", '[2,"m8","ChangeConfiguration",{"key":["AuthorizationKey"],"value":"%s"}]'),
    ("m9", '[2,"m9","ChangeConfiguration",{"%s":"AuthorizationKey"}]'),
    ("m10", '[2,"m10","ChangeConfiguration",{"key":"AuthorizationKey","value":"x"*%s}]'),
    ("m11", '[2,"m11","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s"' + "}" * 3),
    ("m12", '[2,"m12","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s"}'),
]


async def test_a_key_in_a_malformed_frame_is_hidden_from_logs_and_the_bench(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        CentralSystem(port=0, passwords={CP_ID: KEY}) as csms,
        keyed_station(tmp_path, csms) as station,
    ):
        start = mark(csms)
        for unique_id, text in MALFORMED:
            await csms.send_raw(CP_ID, text % NEW_KEY, unique_id=unique_id, timeout=5)
        answers = [r.frame for r in csms.frames[start:] if r.direction == "rx"]
        # every one was answered (the answers themselves are other tests' business) ...
        answered = {frame[1] for frame in answers if len(frame) > 1}
        assert {"m1", "m2", "m4", "m5", "m6", "m8", "m9", "m10"} <= answered
        # ... and still works with its old key: nothing was changed by a broken frame
        assert station.charger.configuration.authorization_key() == KEY
        shown = bench_view(station)
    assert leaks(caplog, KEY, NEW_KEY) == []
    assert NEW_KEY not in shown
    assert "rejected frame" in caplog.text  # the broken ones were logged, without the key
    assert 'received [2, "m1", "ChangeConfiguration"' in caplog.text  # in the frame log too


HEAD = [2, "1", "ChangeConfiguration"]


@pytest.mark.parametrize(
    ("frame", "shown"),
    [
        (
            [*HEAD, {"key": "AuthorizationKey", "value": "s", "x": 1}],
            [*HEAD, {"key": "AuthorizationKey", "value": "***", "x": "***"}],
        ),
        (
            [*HEAD, {"key": ["AuthorizationKey"], "value": "s3cret"}],
            [*HEAD, {"key": "***", "value": "***"}],
        ),
        (
            [*HEAD, {"s3cret-as-a-name": "AuthorizationKey"}],
            [*HEAD, "***"],
        ),
        (
            [2, "1", "Change Configuration s3cret", {"key": "AuthorizationKey"}],
            [2, "1", "***", {"key": "AuthorizationKey"}],
        ),
    ],
)
def test_a_frame_naming_the_key_keeps_its_shape_and_loses_its_values(
    frame: list[object], shown: list[object]
) -> None:
    assert redact(frame) == shown


def test_raw_text_naming_the_key_shows_only_the_head_of_its_call() -> None:
    text = '[2,"7","ChangeConfiguration",{"value":"s3cret","key":"AuthorizationKey"'
    assert redact_text(text).startswith('[2,"7","ChangeConfiguration"***')
    assert "s3cret" not in redact_text(text)
    assert redact_text('{"value":"s3cret","key":"AUTHORIZATIONKEY"}').startswith("***")
    assert redact_text('[2,"7","Heartbeat",{}]') == '[2,"7","Heartbeat",{}]'


#: Keys as a CSMS generates them: 16 to 40 printable characters, at least one of them no letter
#: (a secret made of letters alone could pass for a field name; none is generated that way).
secrets = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=40
).filter(lambda key: not key.isalpha())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


@st.composite
def frames_carrying(draw: st.DrawFn, secret: str) -> list[Any]:
    """A CALL that names the AuthorizationKey somewhere and carries ``secret`` somewhere."""
    payload = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    name = draw(st.sampled_from(["AuthorizationKey", "authorizationKEY", "x AuthorizationKey"]))
    carrier = draw(st.sampled_from(["value", "key", "extra", "nested"]))
    payload[draw(st.sampled_from(["key", "value", "k"]).filter(lambda f: f != carrier))] = name
    payload[carrier] = draw(st.sampled_from([secret, [secret], {"v": secret}, f"{secret} "]))
    # The message id is the CSMS's own (shown, so that answers can be matched), not the key.
    unique_id = draw(st.text(min_size=1, max_size=36).filter(lambda text: secret not in text))
    frame: list[Any] = [2, unique_id, "ChangeConfiguration", payload]
    return frame + draw(st.lists(json_values, max_size=1))


@given(data=st.data(), secret=secrets)
@settings(max_examples=120)
def test_no_shape_of_frame_shows_the_key(data: st.DataObject, secret: str) -> None:
    frame = data.draw(frames_carrying(secret))
    text = json.dumps(frame)
    # Broken JSON too: one of its structural characters gone, or the end cut off.
    structure = [i for i, c in enumerate(text) if c in '[]{}:,"']
    gone = data.draw(st.sampled_from(structure))
    assert secret not in json.dumps(redact(frame))
    assert secret not in redact_text(text)
    assert secret not in redact_text(text[:gone] + text[gone + 1 :])
    assert secret not in redact_text(text[: data.draw(st.integers(0, len(text)))])
