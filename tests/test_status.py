"""`cp-pi status` against a real `cp-pi run --mock` process, and what that process writes to the
journal while an operator watches: connection failures, a charge, the stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cp_pi import __version__
from cp_pi.csms.server import CentralSystem
from cp_pi.status_socket import (
    SOCKET_NAME,
    StatusServer,
    ask,
    may_ask,
    public_url,
)
from tests.bench.helpers import bench_client
from tests.commands.test_cli import CP_PI

CP_ID = "cp-status"
NOBODY = 65534


class Service:
    """A `cp-pi run --mock` process whose stderr (the journal) is read as it is written."""

    def __init__(self, process: asyncio.subprocess.Process, data_dir: Path) -> None:
        self.process = process
        self.data_dir = data_dir
        self.journal: list[str] = []

    async def said(self, pattern: str, *, times: int = 1) -> list[str]:
        """The journal lines matching ``pattern``, once there are ``times`` of them."""
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            while len(found := [li for li in self.journal if re.search(pattern, li)]) < times:
                line = await self.process.stderr.readline()
                assert line, f"cp-pi ended before saying {pattern!r}:\n" + "".join(self.journal)
                self.journal.append(line.decode())
        return found

    async def stop(self) -> None:
        """SIGTERM, as systemd stops it; the rest of the journal is read."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(self.process.communicate(), timeout=15)
        self.journal += rest.decode().splitlines(keepends=True)


@contextlib.asynccontextmanager
async def cp_pi_run(
    tmp_path: Path, csms_url: str, env: dict[str, str] | None = None
) -> AsyncIterator[Service]:
    process = await asyncio.create_subprocess_exec(
        *CP_PI, "run", "--mock", "--bench-port", "0", "--id", CP_ID,
        "--csms-url", csms_url, "--data-dir", str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process, tmp_path)
    try:
        yield service
    finally:
        await service.stop()


async def bench_address(service: Service) -> str:
    """Printed once the status socket answers and the GPIO is up."""
    assert service.process.stdout is not None
    async with asyncio.timeout(30):
        line = (await service.process.stdout.readline()).decode()
    assert line.startswith("bench: "), line
    return line.removeprefix("bench: ").strip().rstrip("/")


async def cp_pi_status(data_dir: Path, *options: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CP_PI, "status", "--data-dir", str(data_dir), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_status_of_a_charging_charge_point_then_the_stop_then_not_running(
    tmp_path: Path,
) -> None:
    async with CentralSystem(port=0) as csms, cp_pi_run(tmp_path, csms.url) as service:
        bench = await bench_address(service)
        await csms.wait_for_call(CP_ID, "StatusNotification")
        async with bench_client(bench) as client:
            assert (await client.command(op="plug", connector=1))["type"] == "ack"
        assert (await csms.remote_start(CP_ID, "TAG1", connector_id=1))["status"] == "Accepted"
        await csms.wait_for_call(
            CP_ID, "StatusNotification", where=lambda p: p["status"] == "Charging"
        )
        transaction_id = max(csms.transactions)

        code, text, _ = await cp_pi_status(tmp_path)
        assert code == 0
        lines = text.splitlines()
        assert lines[0] == f"cp-pi {__version__}, charge point {CP_ID}: Available"
        port = csms.url.rsplit(":", 1)[1]
        assert re.fullmatch(
            rf"link: connected to ws://127\.0\.0\.1:{port}/{CP_ID} since \S+ \S+ \(\d+ s\)",
            lines[1],
        )
        assert lines[2] == (
            "connector 1: Charging (NoError), GOOD_CONNECTION, lock engaged, contactor closed"
        )
        assert re.fullmatch(rf"  transaction {transaction_id} for TAG1: \d+ Wh", lines[3])
        assert lines[4] == "queued transaction messages: 0"

        code, out, _ = await cp_pi_status(tmp_path, "--json")
        assert code == 0
        document = json.loads(out)
        assert document["version"] == __version__
        assert document["link"]["csms_url"] == f"{csms.url}/{CP_ID}"
        assert document["link"]["state"] == "connected"
        (connector,) = document["connectors"]
        assert connector["transaction_id"] == transaction_id
        assert connector["id_tag"] == "TAG1"
        assert connector["locked"]
        assert connector["contactor_closed"]
        assert connector["energy_wh"] >= 0

        socket_file = tmp_path / SOCKET_NAME
        assert stat.S_IMODE(socket_file.stat().st_mode) == 0o660
        await service.stop()

    assert service.process.returncode == 0
    journal = "".join(service.journal)
    assert re.search(
        rf"stopping on SIGTERM: connector 1: transaction {transaction_id} stays open: energy is"
        " off now, .* ends with reason PowerLoss when cp-pi starts again",
        journal,
    )
    assert re.search(rf"transaction ref \w{{8}} is transaction {transaction_id}", journal)
    assert "websockets.server" not in journal  # no line per bench request or CSMS connection
    assert not socket_file.exists()

    code, out, err = await cp_pi_status(tmp_path)
    assert code == 3
    assert out == ""
    assert err == f"cp-pi: the charge point is not running (nothing answers at {socket_file})\n"


async def test_an_unreachable_central_system_is_a_plain_line_per_attempt_and_in_status(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        runtime = tmp_path / "run"  # as systemd's RuntimeDirectory= names it
        runtime.mkdir()
        env = {**os.environ, "RUNTIME_DIRECTORY": str(runtime)}
        async with cp_pi_run(tmp_path, f"ws://127.0.0.1:{port}", env) as service:
            failures = await service.said("cannot connect", times=2)
            await bench_address(service)
            assert not (tmp_path / SOCKET_NAME).exists()
            code, text, _ = await cp_pi_status(runtime)

    for failure in failures:
        assert re.search(
            rf"WARNING cp_pi\.link: link: cannot connect: connection refused by 127\.0\.0\.1:{port}"
            r" \(is the central system running, on that port\?\); next attempt at"
            r" \d\d:\d\d:\d\d \(in \d+\.\d s\)$",
            failure,
        ), failure
    first, second = (service.journal.index(line) for line in failures)
    between = service.journal[first + 1 : second]
    assert not [line for line in between if "cp_pi.link" in line]  # one line per attempt
    assert code == 0
    lines = text.splitlines()
    assert lines[1].startswith(f"link: not connected to ws://127.0.0.1:{port}/{CP_ID}: ")
    assert re.fullmatch(
        r"  last error at \S+ \S+: connection refused by .* next attempt at .*", lines[2]
    )


def test_only_root_the_service_user_and_its_group_may_ask() -> None:
    service = {"service_uid": 998, "service_gid": 997}
    assert may_ask(0, {0}, **service)
    assert may_ask(998, {997}, **service)
    assert may_ask(1000, {1000, 997}, **service)  # an operator in the cp-pi group
    assert not may_ask(1000, {1000, 27}, **service)


def test_status_shows_the_central_system_address_without_its_secrets() -> None:
    assert public_url("wss://cp:s3cret@csms.example:443/ocpp/cp-1?token=abc") == (
        "wss://csms.example:443/ocpp/cp-1"
    )


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to their owner)."""
    with tempfile.TemporaryDirectory(dir="/tmp") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="asking as another user takes root and setpriv",
)
async def test_strangers_are_refused_by_the_file_mode_and_by_their_credentials(
    open_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = StatusServer(open_dir / SOCKET_NAME, lambda: {"status": "Available"})
    await server.start()

    async def ask_as_nobody(groups: str = "--clear-groups") -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", groups,
            *CP_PI, "status", "--data-dir", str(open_dir), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    try:
        code, _, err = await ask_as_nobody()
        assert (code, err) == (4, f"cp-pi: not allowed to ask the charge point at {server.path}:"
                                  " use sudo, or join its group\n")  # fmt: skip
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o660

        server.path.chmod(0o666)  # a socket left open to all: the credentials still decide
        code, _, err = await ask_as_nobody()
        assert code == 4
        assert "says: not allowed: ask as root, as the service's user or in its group" in err
        assert f"status: refused to tell uid {NOBODY}" in caplog.text

        code, out, _ = await ask_as_nobody(
            f"--groups={os.getegid()}"
        )  # a member of the service's group
        assert code == 0
        assert json.loads(out) == {"status": "Available"}
    finally:
        await server.stop()


async def test_a_socket_left_by_a_killed_charge_point_is_replaced(open_dir: Path) -> None:
    path = open_dir / SOCKET_NAME
    with socket.socket(socket.AF_UNIX) as left:
        left.bind(str(path))  # bound, then the process "died": nobody listens
    server = StatusServer(path, lambda: {"status": "Available"})
    await server.start()
    try:
        assert await asyncio.to_thread(ask, path) == {"status": "Available"}
    finally:
        await server.stop()
    assert not path.exists()


async def test_a_file_in_the_sockets_place_is_left_alone_and_said(
    open_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = open_dir / SOCKET_NAME
    path.write_text("not a socket")
    server = StatusServer(path, lambda: {"status": "Available"})
    await server.start()
    await server.stop()
    assert path.read_text() == "not a socket"
    assert f"status: cannot serve at {path} ({path} exists and is not a socket)" in caplog.text
