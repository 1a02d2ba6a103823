"""`cp-pi bench` as a user runs it: a real process, the page's address, a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from cp_pi.bench.server import reachable_from_network
from cp_pi.commands.bench import run_bench
from cp_pi.config import BenchConfig, Settings
from cp_pi.listening import CannotListen

#: The runner with settings from the environment, as the `bench` subcommand starts it.
RUNNER = """
import asyncio, logging, sys
from cp_pi.commands.bench import run_bench
from cp_pi.config import load_settings
logging.basicConfig(level="INFO")
sys.exit(asyncio.run(run_bench(load_settings())))
"""


async def test_it_serves_the_page_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CP_PI_")} | {
        "CP_PI_BENCH__PORT": "0",
        "CP_PI_DATA_DIR": str(tmp_path / "data"),
        "CP_PI_CHARGE_POINT_ID": "cp-bench",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUNNER,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        assert line.startswith("bench: http://127.0.0.1:")
        assert "central system: embedded" in line
        url = line.split()[1]
        state = json.loads(await asyncio.to_thread(_get, f"{url}api/state"))
        page = await asyncio.to_thread(_get, url)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert state["charge_point_id"] == "cp-bench"
    assert "<title>cp-pi bench</title>" in page
    assert process.returncode == 0, stderr.decode()
    assert b"stopping" in stderr
    assert b"Traceback" not in stderr
    assert (tmp_path / "data").is_dir(), "an explicit data_dir is where the bench keeps its store"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
        return text


async def test_a_port_in_use_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(data_dir=tmp_path, bench=BenchConfig(port=port))
        with pytest.raises(CannotListen) as refused:
            await asyncio.wait_for(run_bench(settings), timeout=15)
    assert str(refused.value) == (
        f"cannot listen on 127.0.0.1:{port}: the port is in use by another program"
    )
    assert refused.value.port_taken


async def test_a_host_beyond_loopback_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The port is taken, so the bench never actually listens beyond loopback.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(data_dir=tmp_path, bench=BenchConfig(host="0.0.0.0", port=port))
        with (
            caplog.at_level(logging.WARNING, logger="cp_pi.bench"),
            pytest.raises(CannotListen),
        ):
            await asyncio.wait_for(run_bench(settings), timeout=15)
    assert "anyone who can reach it can drive this charge point" in caplog.text


@pytest.mark.parametrize(
    ("host", "reachable"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("charger.local", True),
    ],
)
def test_a_host_beyond_loopback_is_reachable_from_the_network(host: str, reachable: bool) -> None:
    assert reachable_from_network(host) is reachable
