"""UpdateFirmware against the embedded central system over a real websocket, with real file
servers on loopback (OCTT TC_044_1/2/3)."""

from __future__ import annotations

import logging
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cp_pi.config import ConfigError, FirmwareConfig, FirmwareInstaller, load_settings
from cp_pi.csms.files import FileServer
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID, StationFactory, rig_of
from tests.firmware.servers import breaking_server, fake_release, ftp_server, refused_url
from tests.ocpp16.helpers import LogWatch, calls, mark, status_reached

FIRMWARE = "FirmwareStatusNotification"


def statuses(csms: CentralSystem, after: int) -> list[str]:
    return [payload["status"] for payload in calls(csms, FIRMWARE, after=after)]


async def reached(csms: CentralSystem, status: str, after: int) -> None:
    await csms.wait_for_call(CP_ID, FIRMWARE, where=lambda p: p["status"] == status, after=after)


def recording_installer(tmp_path: Path, exit_status: int = 0) -> FirmwareConfig:
    """An operator command that keeps a copy of the file it is given, then exits as told."""
    script = (
        f"import shutil, sys; shutil.copy(sys.argv[1], {str(tmp_path / 'installed')!r});"
        f" print('boom', file=sys.stderr); sys.exit({exit_status})"
    )
    command = shlex.join([sys.executable, "-c", script])
    return FirmwareConfig(installer=FirmwareInstaller.COMMAND, command=command)


async def test_tc_044_1_download_and_install_with_the_command_installer(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    (files.directory / "image.raucb").write_bytes(b"a system image" * 1000)
    async with make_station(firmware=recording_installer(tmp_path)):
        start = mark(csms)
        answer = await csms.update_firmware(CP_ID, f"{files.url}/image.raucb")
        assert answer == {}
        await reached(csms, "Installed", start)

        assert statuses(csms, start) == ["Downloading", "Downloaded", "Installing", "Installed"]
        assert (tmp_path / "installed").read_bytes() == b"a system image" * 1000


async def test_tc_044_1_over_ftp(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    served = tmp_path / "ftp"
    served.mkdir()
    (served / "image.swu").write_bytes(b"swupdate" * 500)
    with ftp_server(served) as ftp:
        async with make_station(firmware=recording_installer(tmp_path)):
            start = mark(csms)
            await csms.update_firmware(CP_ID, f"{ftp}/image.swu")
            await reached(csms, "Installed", start)

    assert statuses(csms, start) == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert (tmp_path / "installed").read_bytes() == b"swupdate" * 500


async def test_the_download_waits_for_the_retrieve_date(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    (files.directory / "image.raucb").write_bytes(b"later")
    async with make_station(firmware=recording_installer(tmp_path)):
        start = mark(csms)
        retrieve = datetime.now(UTC) + timedelta(seconds=0.5)
        due = time.monotonic() + 0.5  # the frame record's clock
        await csms.update_firmware(CP_ID, f"{files.url}/image.raucb", retrieve.isoformat())
        assert statuses(csms, start) == []
        record = await csms.wait_for_call(CP_ID, FIRMWARE, after=start)

        assert record.frame[3] == {"status": "Downloading"}
        assert record.time >= due - 0.01  # the event loop's timer may fire a hair early


async def test_tc_044_3_a_failing_installer_command_is_installation_failed(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    (files.directory / "image.raucb").write_bytes(b"image")
    log = LogWatch()
    async with make_station(firmware=recording_installer(tmp_path, exit_status=3)):
        logging.getLogger("cp_pi.firmware").addHandler(log)
        try:
            start = mark(csms)
            await csms.update_firmware(CP_ID, f"{files.url}/image.raucb")
            await reached(csms, "InstallationFailed", start)
        finally:
            logging.getLogger("cp_pi.firmware").removeHandler(log)

    assert statuses(csms, start) == [
        "Downloading",
        "Downloaded",
        "Installing",
        "InstallationFailed",
    ]
    [line] = [line for line in log.lines if "installation failed" in line]
    assert "exited with status 3: boom" in line


async def test_tc_044_2_a_missing_file_is_download_failed_after_the_retries(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    async with make_station(firmware=recording_installer(tmp_path)):
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{files.url}/missing.whl", retries=2, retry_interval=0)
        await reached(csms, "DownloadFailed", start)

    assert statuses(csms, start) == ["Downloading", "DownloadFailed"]
    assert not (tmp_path / "installed").exists()


async def test_tc_044_2_a_refused_connection_is_download_failed(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    async with make_station(firmware=recording_installer(tmp_path)):
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{refused_url()}/cp_pi-9.9.0-py3-none-any.whl")
        await reached(csms, "DownloadFailed", start)

    assert statuses(csms, start) == ["Downloading", "DownloadFailed"]


async def test_tc_044_2_a_server_gone_mid_transfer_is_download_failed(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    with breaking_server() as server:
        async with make_station(firmware=recording_installer(tmp_path)):
            start = mark(csms)
            await csms.update_firmware(CP_ID, f"{server}/cp_pi-9.9.0-py3-none-any.whl")
            await reached(csms, "DownloadFailed", start)

    assert statuses(csms, start) == ["Downloading", "DownloadFailed"]
    assert list((tmp_path / "data" / "firmware").rglob("*")) == []  # no partial file left


async def test_a_full_disk_is_download_failed_at_once(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    fake_release(files.directory / "cp_pi-9.9.0-py3-none-any.whl")
    download = tmp_path / "data" / "firmware" / "download"
    download.mkdir(parents=True)
    # Every write to /dev/full fails with ENOSPC, as on a full SD card.
    (download / "cp_pi-9.9.0-py3-none-any.whl.part").symlink_to("/dev/full")
    async with make_station():
        start = mark(csms)
        await csms.update_firmware(
            CP_ID, f"{files.url}/cp_pi-9.9.0-py3-none-any.whl", retries=3, retry_interval=30
        )
        await reached(csms, "DownloadFailed", start)  # no retry: 30 s would time the wait out

    assert statuses(csms, start) == ["Downloading", "DownloadFailed"]


async def test_tc_044_3_a_file_that_is_not_cp_pi_is_installation_failed(
    make_station: StationFactory, csms: CentralSystem, files: FileServer
) -> None:
    fake_release(files.directory / "other-1.0-py3-none-any.whl", name="other")
    async with make_station():
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{files.url}/other-1.0-py3-none-any.whl")
        await reached(csms, "InstallationFailed", start)

    assert statuses(csms, start) == [
        "Downloading",
        "Downloaded",
        "Installing",
        "InstallationFailed",
    ]


async def test_tc_044_3_a_corrupt_archive_is_installation_failed(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    wheel = fake_release(tmp_path / "good.whl")
    data = bytearray(wheel.read_bytes())
    middle = data.index(b"xxxx")
    data[middle : middle + 4] = b"yyyy"  # the CRC no longer matches
    (files.directory / "cp_pi-9.9.0-py3-none-any.whl").write_bytes(bytes(data))
    log = LogWatch()
    logging.getLogger("cp_pi.firmware").addHandler(log)
    try:
        async with make_station():
            start = mark(csms)
            await csms.update_firmware(CP_ID, f"{files.url}/cp_pi-9.9.0-py3-none-any.whl")
            await reached(csms, "InstallationFailed", start)
    finally:
        logging.getLogger("cp_pi.firmware").removeHandler(log)

    assert statuses(csms, start)[-2:] == ["Installing", "InstallationFailed"]
    assert any("corrupt archive" in line for line in log.lines)


async def test_a_cp_pi_wheel_without_the_side_by_side_layout_is_installation_failed(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    fake_release(files.directory / "cp_pi-9.9.0-py3-none-any.whl")
    config = FirmwareConfig(root=tmp_path / "no-layout")
    async with make_station(firmware=config):
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{files.url}/cp_pi-9.9.0-py3-none-any.whl")
        await reached(csms, "InstallationFailed", start)

    assert statuses(csms, start) == [
        "Downloading",
        "Downloaded",
        "Installing",
        "InstallationFailed",
    ]


async def test_installing_waits_for_the_transaction_and_no_new_one_starts(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    (files.directory / "image.raucb").write_bytes(b"image")
    async with make_station(firmware=recording_installer(tmp_path)) as station:
        rig = rig_of(station)
        start = mark(csms)
        rig.plug(1)
        await csms.remote_start(CP_ID, "TAG1", 1)
        await status_reached(csms, "Charging", after=start)
        before_update = mark(csms)
        await csms.update_firmware(CP_ID, f"{files.url}/image.raucb")
        await reached(csms, "Downloaded", before_update)

        refused = await csms.remote_start(CP_ID, "TAG2", 1)  # taken, and held for the update
        assert refused == {"status": "Rejected"}
        assert statuses(csms, before_update) == ["Downloading", "Downloaded"]
        [tx] = [c.transaction for c in station.connectors.values() if c.transaction]
        assert tx is not None
        assert tx.transaction_id is not None
        await csms.remote_stop(CP_ID, tx.transaction_id)
        await reached(csms, "Installed", before_update)
        stopped = await csms.wait_for_call(CP_ID, "StopTransaction", after=before_update)
        installing = await csms.wait_for_call(
            CP_ID, FIRMWARE, where=lambda p: p["status"] == "Installing", after=before_update
        )
        unavailable = await status_reached(csms, "Unavailable", after=before_update)

        assert csms.frames.index(stopped) < csms.frames.index(installing)
        assert unavailable < csms.frames.index(installing)
        # Nothing restarted (the command installed): the connector is given back.
        await status_reached(csms, "Finishing", after=csms.frames.index(installing))


async def test_a_trigger_with_nothing_in_progress_answers_idle(
    station: object, csms: CentralSystem
) -> None:
    start = mark(csms)
    answer = await csms.trigger_message(CP_ID, FIRMWARE)
    record = await csms.wait_for_call(CP_ID, FIRMWARE, after=start)

    assert answer == {"status": "Accepted"}
    assert record.frame[3] == {"status": "Idle"}


def test_the_feature_profile_is_listed() -> None:
    from cp_pi.station.configuration import SUPPORTED_FEATURE_PROFILES

    assert "FirmwareManagement" in SUPPORTED_FEATURE_PROFILES.split(",")


def test_a_command_installer_without_its_command_is_one_line_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(
            None,
            environ={"CP_PI_FIRMWARE__INSTALLER": "command"},
            default_path=tmp_path / "none.toml",
        )

    assert str(raised.value).startswith("firmware")
    assert 'installer = "command" needs firmware.command' in str(raised.value)
