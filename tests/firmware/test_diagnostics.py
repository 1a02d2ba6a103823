"""GetDiagnostics against the embedded central system, uploading to real servers on loopback
(OCTT TC_045_1, TC_045_2)."""

from __future__ import annotations

import json
import logging
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from cp_pi.config import SecurityConfig
from cp_pi.csms.files import FileServer
from cp_pi.csms.server import CentralSystem
from cp_pi.updates.diagnostics import LOG_FILE, attach_log_file, log_lines
from tests.conftest import CP_ID, StationFactory
from tests.firmware.servers import ftp_server, refused_url
from tests.ocpp16.helpers import calls, mark

DIAGNOSTICS = "DiagnosticsStatusNotification"
KEY = "0123456789abcdefSECRET"


def statuses(csms: CentralSystem, after: int) -> list[str]:
    return [payload["status"] for payload in calls(csms, DIAGNOSTICS, after=after)]


async def reached(csms: CentralSystem, status: str, after: int) -> None:
    await csms.wait_for_call(CP_ID, DIAGNOSTICS, where=lambda p: p["status"] == status, after=after)


def members(archive: Path) -> dict[str, str]:
    with tarfile.open(archive) as tar:
        return {
            m.name.partition("/")[2]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


async def test_tc_045_1_get_diagnostics_uploads_by_http_put(
    make_station: StationFactory, csms: CentralSystem, files: FileServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / LOG_FILE).write_text(
        "2026-01-01T10:00:00Z INFO cp_pi: before the window\n"
        "2026-01-01T11:00:00Z ERROR cp_pi: inside the window\n"
        "Traceback (most recent call last): the line after it\n"
        "2026-01-01T12:30:00Z INFO cp_pi: after the window\n"
    )
    security = SecurityConfig(authorization_key=SecretStr(KEY))
    async with make_station(security=security):
        start = mark(csms)
        answer = await csms.get_diagnostics(
            CP_ID,
            f"{files.url}/",
            start_time="2026-01-01T10:30:00Z",
            stop_time="2026-01-01T12:00:00Z",
        )
        await reached(csms, "Uploaded", start)

    assert statuses(csms, start) == ["Uploading", "Uploaded"]
    name = answer["fileName"]
    assert name.startswith(f"{CP_ID}-diagnostics-")
    assert name.endswith(".tar.gz")
    archive = members(files.directory / name)
    assert archive[LOG_FILE] == (
        "2026-01-01T11:00:00Z ERROR cp_pi: inside the window\n"
        "Traceback (most recent call last): the line after it\n"
    )
    frames = [json.loads(line) for line in archive["ocpp-frames.jsonl"].splitlines()]
    assert any(f["frame"][2:3] == ["BootNotification"] for f in frames)
    assert json.loads(archive["version.json"])["cp_pi"]
    assert json.loads(archive["store.json"])["open_transactions"] == 0
    configuration = json.loads(archive["configuration.json"])
    assert configuration["settings"]["charge_point_id"] == CP_ID
    assert "SupportedFeatureProfiles" in configuration["ocpp_keys"]
    assert KEY not in json.dumps(archive)  # the AuthorizationKey is nowhere in it


async def test_tc_045_1_get_diagnostics_uploads_by_ftp(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    served = tmp_path / "ftp"
    (served / "logs").mkdir(parents=True)
    with ftp_server(served) as ftp:
        async with make_station():
            start = mark(csms)
            answer = await csms.get_diagnostics(CP_ID, f"{ftp}/logs/")
            await reached(csms, "Uploaded", start)

    assert statuses(csms, start) == ["Uploading", "Uploaded"]
    assert "ocpp-frames.jsonl" in members(served / "logs" / answer["fileName"])


async def test_tc_045_2_a_refused_upload_is_upload_failed_after_the_retries(
    make_station: StationFactory, csms: CentralSystem, tmp_path: Path
) -> None:
    watch = _Lines()
    logging.getLogger("cp_pi.diagnostics").addHandler(watch)
    try:
        async with make_station():
            start = mark(csms)
            await csms.get_diagnostics(CP_ID, f"{refused_url()}/", retries=2, retry_interval=0)
            await reached(csms, "UploadFailed", start)
    finally:
        logging.getLogger("cp_pi.diagnostics").removeHandler(watch)

    assert statuses(csms, start) == ["Uploading", "UploadFailed"]
    assert sum("upload attempt" in line for line in watch.lines) == 3
    [failed] = [line for line in watch.lines if "upload failed" in line]  # one clear line
    assert failed.endswith(": connection refused")
    assert list((tmp_path / "data").glob("diagnostics/*")) == []  # the archive is not kept


async def test_tc_045_2_a_server_that_refuses_the_put_is_upload_failed(
    make_station: StationFactory, csms: CentralSystem, files: FileServer
) -> None:
    async with make_station():
        start = mark(csms)
        await csms.get_diagnostics(CP_ID, f"{files.url}/no/such/folder/")
        await reached(csms, "UploadFailed", start)

    assert statuses(csms, start) == ["Uploading", "UploadFailed"]


async def test_a_trigger_with_nothing_in_progress_answers_idle(
    station: object, csms: CentralSystem
) -> None:
    start = mark(csms)
    answer = await csms.trigger_message(CP_ID, DIAGNOSTICS)
    record = await csms.wait_for_call(CP_ID, DIAGNOSTICS, after=start)

    assert answer == {"status": "Accepted"}
    assert record.frame[3] == {"status": "Idle"}


def test_the_log_file_rotates_and_its_lines_can_be_cut_by_time(tmp_path: Path) -> None:
    handler = attach_log_file(tmp_path, max_bytes=10_000, backups=2)
    assert handler is not None
    logger = logging.getLogger("cp_pi.test_log_file")
    logger.setLevel(logging.INFO)
    try:
        for number in range(400):
            logger.info("line %d %s", number, "x" * 60)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]  # bounded: two backups
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 10_000
    lines = list(log_lines(tmp_path, datetime.now(UTC).replace(year=2000), None))
    assert lines[-1].split(" ", 1)[1].startswith("INFO cp_pi.test_log_file: line 399")
    numbers = [int(line.split("line ")[1].split()[0]) for line in lines]
    assert numbers == sorted(numbers)  # oldest file first
    assert list(log_lines(tmp_path, None, datetime(2000, 1, 1, tzinfo=UTC))) == []


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
