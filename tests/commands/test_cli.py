"""The `cp-pi` command as a user runs it: a real process, real signals, exit statuses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cp_pi.csms.server import CentralSystem

CP_PI = [sys.executable, "-m", "cp_pi"]


def run_cp_pi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CP_PI, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_help_lists_the_commands() -> None:
    result = run_cp_pi("--help")
    assert result.returncode == 0
    for command in ("run", "demo", "bench", "csms", "fleet", "check-wiring", "check-config"):
        assert command in result.stdout


def test_demo_plays_the_whole_unlock_story() -> None:
    result = run_cp_pi("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 of 9 steps behaved" in result.stdout
    assert "UnlockFailed" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_missing_pin_driver_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "CP_PI_PIN_FACTORY": "pigpio", "CP_PI_DATA_DIR": str(tmp_path)}
    result = run_cp_pi("run", "--csms-url", "ws://127.0.0.1:9", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("cp-pi: ")
    assert "Traceback" not in result.stderr


async def test_run_mock_boots_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    async with CentralSystem(port=0) as csms:
        process = await asyncio.create_subprocess_exec(
            *CP_PI,
            "run",
            "--mock",
            "--bench-port",
            "0",
            "--id",
            "cp-cli",
            "--csms-url",
            csms.url,
            "--data-dir",
            str(tmp_path),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await csms.wait_for_call("cp-cli", "StatusNotification", timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, stderr.decode()
    assert b"bench: http://127.0.0.1:" in stdout
    assert b"stopping" in stderr
    assert b"Traceback" not in stderr


async def test_run_speaks_the_systemd_notify_protocol(tmp_path: Path) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    loop = asyncio.get_running_loop()
    received: list[str] = []

    async def until_notified(prefix: str) -> None:
        async with asyncio.timeout(30):
            while not any(message.startswith(prefix) for message in received):
                received.append((await loop.sock_recv(notify, 4096)).decode())

    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    async with CentralSystem(port=0) as csms:
        process = await asyncio.create_subprocess_exec(
            *CP_PI, "run", "--mock", "--bench-port", "0", "--csms-url", csms.url,
            "--data-dir", str(tmp_path / "data"), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await until_notified("READY=1")
            await until_notified("STATUS=CSMS link: connected")
        finally:
            process.send_signal(signal.SIGTERM)
        await until_notified("STOPPING=1")
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    notify.close()


async def test_a_reset_restarts_the_process_in_place_with_the_configuration_read_again(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cp-pi.toml"
    config.write_text('model = "Model A"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    loop = asyncio.get_running_loop()

    async def told_until_ready() -> list[bytes]:
        told: list[bytes] = []
        async with asyncio.timeout(30):
            while b"READY=1" not in told:
                told.append(await loop.sock_recv(notify, 4096))
        return told

    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    async with CentralSystem(port=0) as csms:
        process = await asyncio.create_subprocess_exec(
            *CP_PI, "run", "--config", str(config), "--mock", "--bench-port", "0",
            "--id", "cp-reset", "--csms-url", csms.url, "--data-dir", str(tmp_path / "data"),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            first = await csms.wait_for_call("cp-reset", "BootNotification", timeout=30)
            assert first.frame[3]["chargePointModel"] == "Model A"
            await told_until_ready()
            config.write_text('model = "Model B"\n')

            assert (await csms.reset("cp-reset", "Hard")) == {"status": "Accepted"}
            again = await csms.wait_for_call(
                "cp-reset", "BootNotification", after=csms.frames.index(first) + 1, timeout=30
            )
            assert again.frame[3]["chargePointModel"] == "Model B"
            assert process.returncode is None  # the same process (same PID), not a new one
            told = await told_until_ready()
            assert b"RELOADING=1" in told[: told.index(b"READY=1")]
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    notify.close()
    assert process.returncode == 0, stderr.decode()
    assert b"reset: restarting the process" in stderr
    assert b"Traceback" not in stderr


async def test_fleet_boots_against_its_embedded_central_system_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    log = tmp_path / "fleet.log"  # a file, not a pipe: the log is not read while the fleet runs
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *CP_PI,
            *("fleet", "--count", "5", "--rate", "100"),
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
    assert process.stdout is not None
    said: list[str] = []
    try:
        async with asyncio.timeout(60):
            # The periodic summary tells when every charge point has booted.
            while "booted 5/5" not in (said or [""])[-1]:
                said.append((await process.stdout.readline()).decode())
                assert said[-1], "the fleet ended before all five booted"
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    said += rest.decode().splitlines()
    assert process.returncode == 0, log.read_text()
    assert said[0].startswith("embedded central system at ws://127.0.0.1:")
    assert said[-1].startswith("final:")
    assert "booted 5/5  connected 0" in said[-1]
    assert "errors 0" in said[-1]
