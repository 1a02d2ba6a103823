"""TC_073_CS: the central system changes the AuthorizationKey (security profiles 1 and 2).

The charge point answers Accepted, closes its link once the answer is out and dials again with
the new key; twice in a row (the case's steps 1-3 and 4-6). A key the central system then
refuses is said so in the log and retried with backoff, never replaced by the old key or by no
key at all: the central system decides.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cp_pi.app import running_station
from cp_pi.config import SecurityConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.ocpp16.wire import basic_authorization, basic_credentials, basic_password
from tests.conftest import CP_ID, fast_settings
from tests.ocpp16.helpers import mark, status_reached
from tests.ocpp16.test_security import LogWatch

KEY = "0123456789abcdef0123"
#: The value OCTT sends in TC_073_CS: "OCA_OCTT_admin_test", hex encoded. The Basic header
#: carries the password it stands for (OCTT TC_085_CS: the non-hex representation).
OCTT_KEY = "4F43415F4F4354545F61646D696E5F74657374"
OCTT_PASSWORD = "OCA_OCTT_admin_test"
SECOND_KEY = "second-key-0123456789"
CONNECTED = f"{CP_ID} connected from"
REFUSED = "password refused by 127.0.0.1"


async def test_tc_073_a_new_key_is_used_at_once_and_only_it(
    tmp_path: Path, log_watch: LogWatch
) -> None:
    passwords = {CP_ID: KEY}
    settings = fast_settings(tmp_path / "data", None).model_copy(
        update={"security": SecurityConfig(authorization_key=KEY)}
    )
    async with CentralSystem(port=0, passwords=passwords) as csms:
        settings = settings.model_copy(update={"csms_url": csms.url})
        async with running_station(settings, response_timeout=5, backoff_first=0.05) as station:
            await status_reached(csms, "Available", after=0)
            configuration = station.charger.configuration
            # steps 1-3, then 4-6; the central system expects the new password from now on
            for new_key, password in ((OCTT_KEY, OCTT_PASSWORD), (SECOND_KEY, SECOND_KEY)):
                connections = sum(CONNECTED in line for line in log_watch.lines)
                passwords[CP_ID] = password
                start = mark(csms)
                answer = await csms.change_configuration(CP_ID, "AuthorizationKey", new_key)
                assert answer == {"status": "Accepted"}
                await log_watch.seen(CONNECTED, times=connections + 1)
                assert configuration.authorization_key() == new_key
                # The answer went out before the link closed, and the new link works.
                assert [r.frame[0] for r in csms.frames[start:]][:2] == [2, 3]
                assert (await csms.get_configuration(CP_ID, ["HeartbeatInterval"]))[
                    "configurationKey"
                ]
            assert (
                sum("refused: wrong or missing credentials" in line for line in log_watch.lines)
                == 0
            )

            # A key the central system does not know yet: refused, said, retried with it.
            connections = sum(CONNECTED in line for line in log_watch.lines)
            answer = await csms.change_configuration(CP_ID, "AuthorizationKey", KEY * 2)
            assert answer == {"status": "Accepted"}
            await log_watch.seen(REFUSED, times=3)
            # Neither the old key (which the central system still takes) nor none was tried.
            assert sum(CONNECTED in line for line in log_watch.lines) == connections
            passwords[CP_ID] = KEY * 2  # the central system catches up: the next dial works
            await log_watch.seen(CONNECTED, times=connections + 1)


def test_a_hexadecimal_key_stands_for_the_bytes_it_encodes() -> None:
    header = basic_authorization(CP_ID, OCTT_KEY)
    assert base64.b64decode(header.removeprefix("Basic ")) == f"{CP_ID}:{OCTT_PASSWORD}".encode()
    assert basic_credentials(header) == (CP_ID, OCTT_PASSWORD.encode())
    binary = "00FF" * 8  # 16 bytes that are no text at all
    assert basic_credentials(basic_authorization(CP_ID, binary)) == (CP_ID, b"\x00\xff" * 8)
    # A readable key (the configuration file's kind) is the password as it is.
    assert basic_password(KEY) == KEY.encode()
    assert basic_password("abc" * 11) == ("abc" * 11).encode()  # 33 characters: not hex pairs
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic not base64!") is None
