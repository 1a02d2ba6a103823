"""Security profiles 1 to 3 against a real TLS server on loopback with throwaway CAs.

A good certificate and the right AuthorizationKey connect; every kind of wrong one fails with a
log line an operator can act on, and is retried, never answered by falling back to plain text.
"""

from __future__ import annotations

import json
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from cp_pi.app import running_station
from cp_pi.config import BenchConfig, SecurityConfig
from cp_pi.csms.server import CentralSystem
from cp_pi.store import FILE_NAME
from tests.conftest import CP_ID, fast_settings
from tests.ocpp16.helpers import LogWatch

KEY = "0123456789abcdef0123"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(
    cert: trustme.LeafCert, *, client_ca: trustme.CA | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def ca_file(ca: trustme.CA, tmp_path: Path, name: str = "ca.pem") -> Path:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return path


@asynccontextmanager
async def run_against(
    csms: CentralSystem, tmp_path: Path, security: SecurityConfig
) -> AsyncIterator[Any]:
    settings = fast_settings(tmp_path / "data", csms.url).model_copy(update={"security": security})
    async with running_station(settings, response_timeout=5) as station:
        yield station


@pytest.fixture
async def tls_csms(ca: trustme.CA) -> AsyncIterator[CentralSystem]:
    context = server_context(ca.issue_cert("127.0.0.1", "localhost"))
    async with CentralSystem(port=0, ssl=context, passwords={CP_ID: KEY}) as csms:
        yield csms


async def test_profile_2_good_certificate_and_key_connect(
    tls_csms: CentralSystem, ca: trustme.CA, tmp_path: Path
) -> None:
    """OCTT TC_086_CS (TLS, valid server certificate, Basic auth)."""
    assert tls_csms.url.startswith("wss://")
    security = SecurityConfig(authorization_key=KEY, ca_file=ca_file(ca, tmp_path))
    async with run_against(tls_csms, tmp_path, security):
        await tls_csms.wait_for_call(CP_ID, "BootNotification")


@pytest.mark.parametrize(
    ("problem", "log_line"),
    [
        ("wrong CA", "certificate not trusted (unable to get local issuer certificate;"),
        ("wrong password", "password refused by 127.0.0.1"),
    ],
)
async def test_profile_2_failures_are_named_and_retried(
    tls_csms: CentralSystem,
    ca: trustme.CA,
    tmp_path: Path,
    log_watch: LogWatch,
    problem: str,
    log_line: str,
) -> None:
    trusted = ca_file(trustme.CA() if problem == "wrong CA" else ca, tmp_path)
    key = "not-the-right-key-at-all" if problem == "wrong password" else KEY
    async with run_against(
        tls_csms, tmp_path, SecurityConfig(authorization_key=key, ca_file=trusted)
    ):
        await log_watch.seen(log_line, times=2)  # said clearly, and tried again
    assert not any(r.is_call("BootNotification") for r in tls_csms.frames)


@pytest.mark.parametrize(
    ("issue", "log_line"),
    [
        (
            lambda ca: ca.issue_cert("127.0.0.1", not_after=datetime.now(UTC) - timedelta(days=1)),
            "certificate has expired",
        ),
        (lambda ca: ca.issue_cert("csms.example.com"), "not for 127.0.0.1 (wrong host)"),
    ],
    ids=["expired", "wrong hostname"],
)
async def test_a_certificate_that_is_not_valid_for_this_server_is_refused(
    ca: trustme.CA, tmp_path: Path, log_watch: LogWatch, issue: Any, log_line: str
) -> None:
    async with CentralSystem(port=0, ssl=server_context(issue(ca))) as csms:
        security = SecurityConfig(authorization_key=KEY, ca_file=ca_file(ca, tmp_path))
        async with run_against(csms, tmp_path, security):
            await log_watch.seen(log_line, times=2)
        assert not any(r.is_call("BootNotification") for r in csms.frames)


async def test_profile_3_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    """OCTT TC_087_CS (TLS, valid client certificate)."""
    client_ca = trustme.CA()
    client = client_ca.issue_cert(CP_ID)
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    context = server_context(ca.issue_cert("127.0.0.1"), client_ca=client_ca)
    async with CentralSystem(port=0, ssl=context) as csms:
        security = SecurityConfig(
            ca_file=ca_file(ca, tmp_path),
            client_cert_file=tmp_path / "client.pem",
            client_key_file=tmp_path / "client.key",
        )
        async with run_against(csms, tmp_path, security):
            await csms.wait_for_call(CP_ID, "BootNotification")


async def test_profile_1_works_but_warns_that_the_key_travels_in_clear(
    tmp_path: Path, log_watch: LogWatch
) -> None:
    """OCTT TC_085_CS (Basic authentication, valid credentials)."""
    async with (
        CentralSystem(port=0, passwords={CP_ID: KEY}) as csms,
        run_against(csms, tmp_path, SecurityConfig(authorization_key=KEY)),
    ):
        await csms.wait_for_call(CP_ID, "BootNotification")
        await log_watch.seen("unencrypted (ws://)")


async def test_the_authorization_key_is_write_only_and_never_shown(
    tmp_path: Path, log_watch: LogWatch
) -> None:
    new_key = "fedcba9876543210fedcba98"
    passwords = {CP_ID: KEY}
    async with CentralSystem(port=0, passwords=passwords) as csms:
        settings = fast_settings(tmp_path / "data", csms.url).model_copy(
            update={"security": SecurityConfig(authorization_key=KEY), "bench": BenchConfig(port=0)}
        )
        async with running_station(settings, response_timeout=5, bench=True) as station:
            await csms.wait_for_call(CP_ID, "StatusNotification")
            passwords[CP_ID] = new_key
            answer = await csms.change_configuration(CP_ID, "AuthorizationKey", new_key)
            assert answer == {"status": "Accepted"}
            await log_watch.seen(f"{CP_ID} connected from", times=2)  # with the new key (TC_073)
            assert (await csms.change_configuration(CP_ID, "AuthorizationKey", "short")) == {
                "status": "Rejected"
            }
            everything = await csms.get_configuration(CP_ID)
            asked = await csms.get_configuration(CP_ID, ["AuthorizationKey"])
            assert station.bench is not None
            bench_view = json.dumps(station.bench.state()) + json.dumps(list(station.bench._frames))
        store_mode = stat.S_IMODE((tmp_path / "data" / FILE_NAME).stat().st_mode)
    assert "AuthorizationKey" not in {e["key"] for e in everything["configurationKey"]}
    assert asked["configurationKey"] == [{"key": "AuthorizationKey", "readonly": False}]
    for text in (bench_view, "\n".join(log_watch.lines)):
        assert KEY not in text
        assert new_key not in text
    assert store_mode == 0o600
