"""The update-and-rollback path end to end: real builds of this tree with other version
numbers, a side-by-side layout in a scratch directory, the launcher, and `cp-pi run` as a
process that restarts itself in place (OCTT TC_044_1 and TC_044_3 with a real installation).

No network: the wheels are built offline with this environment's setuptools, and cp-pi's
dependencies (pip included) are lent to every version by PYTHONPATH, as Debian's packages are
lent to the virtualenvs on a Pi by --system-site-packages.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cp_pi.csms.files import FileServer
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID
from tests.ocpp16.helpers import calls, mark

PROJECT = Path(__file__).resolve().parents[2]
LAUNCHER = PROJECT / "cp_pi" / "updates" / "launcher.py"
FIRMWARE = "FirmwareStatusNotification"
#: Seconds for a whole start of `cp-pi run` (the interpreter, imports, the boot) under load.
START_WITHIN = 45


def build(scratch: Path, version: str, *, broken: bool = False) -> subprocess.Popen[bytes]:
    """Start building a wheel of this tree as ``version`` into ``scratch/wheels``."""
    source = scratch / f"source-{version}"
    source.mkdir()
    shutil.copy2(PROJECT / "README.md", source / "README.md")
    pyproject = (PROJECT / "pyproject.toml").read_text()
    (source / "pyproject.toml").write_text(
        pyproject.replace('\nversion = "', f'\nversion = "{version}"\n# was: "', 1)
    )
    shutil.copytree(
        PROJECT / "cp_pi", source / "cp_pi", ignore=shutil.ignore_patterns("__pycache__")
    )
    if broken:  # a build that cannot even start
        app = source / "cp_pi" / "app.py"
        app.write_text(app.read_text() + '\nraise ImportError("a broken build")\n')
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(scratch / "wheels"), str(source)),
        ],
        stdout=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three builds, side by side: the running version, its update, and a broken update."""
    scratch = tmp_path_factory.mktemp("builds")
    versions = {"0.1.1": False, "0.2.0": False, "0.3.0": True}
    builds = [build(scratch, version, broken=broken) for version, broken in versions.items()]
    assert [b.wait(120) for b in builds] == [0, 0, 0]
    return {v: next((scratch / "wheels").glob(f"cp_pi-{v}-*.whl")) for v in versions}


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This environment's packages but cp-pi itself, for PYTHONPATH."""
    lent = tmp_path_factory.mktemp("dependencies")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("cp_pi", "__editable__")) and entry.suffix != ".pth":
            (lent / entry.name).symlink_to(entry)
    return lent


def lay_out(root: Path, wheel: Path, version: str, environ: dict[str, str]) -> None:
    """What systemd/install.sh makes: versions/<version>, current, launch."""
    venv = root / "versions" / version
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("install", "--quiet", "--no-deps", "--no-index", str(wheel)),
        ],
        check=True,
        env=environ,
    )
    (root / "current").symlink_to(Path("versions") / version)
    shutil.copy2(LAUNCHER, root / "launch")


@dataclass
class Installation:
    """The layout with 0.1.1 current, and how to start `cp-pi run` through its launcher."""

    root: Path
    config: Path
    environ: dict[str, str]
    files: FileServer

    def configure(self, csms: CentralSystem, *, confirm_timeout: float = 60) -> None:
        self.config.write_text(
            f'charge_point_id = "{CP_ID}"\n'
            f'csms_url = "{csms.url}"\n'
            'pin_factory = "mock"\n'
            f'data_dir = "{self.root.parent / "data"}"\n'
            "[bench]\nport = 0\n"
            f'[firmware]\nroot = "{self.root}"\npip_args = ["--no-index", "--no-deps"]\n'
            f"confirm_timeout = {confirm_timeout}\n"
        )

    async def start(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, str(self.root / "launch"), "run", "--config", str(self.config)),
            env=self.environ,
            # Not from this checkout: `python -m` would find its cp_pi before the installed one.
            cwd=self.root.parent,
            stderr=asyncio.subprocess.PIPE,
        )

    def versions(self) -> list[str]:
        return sorted(p.name for p in (self.root / "versions").iterdir())


@pytest.fixture
def installation(
    tmp_path: Path, csms: CentralSystem, wheels: dict[str, Path], dependencies: Path
) -> Iterator[Installation]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CP_PI_", "PYTHON"))}
    environ["PYTHONPATH"] = str(dependencies)
    root = tmp_path / "opt"
    lay_out(root, wheels["0.1.1"], "0.1.1", environ)
    files = FileServer(tmp_path / "files")
    files.directory.mkdir()
    for wheel in wheels.values():
        shutil.copy2(wheel, files.directory / wheel.name)
    files.start()
    installed = Installation(root, tmp_path / "cp-pi.toml", environ, files)
    installed.configure(csms)
    try:
        yield installed
    finally:
        files.stop()


async def stopped(process: asyncio.subprocess.Process) -> str:
    """Stop the charge point (SIGTERM, as systemd does); what it wrote to stderr."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    print(stderr.decode())  # shown when the test fails
    return stderr.decode()


async def boot(csms: CentralSystem, after: int) -> str:
    """The firmwareVersion of the next BootNotification."""
    record = await csms.wait_for_call(CP_ID, "BootNotification", after=after, timeout=START_WITHIN)
    return str(record.frame[3]["firmwareVersion"])


async def firmware_status(csms: CentralSystem, status: str, after: int) -> int:
    record = await csms.wait_for_call(
        CP_ID, FIRMWARE, where=lambda p: p["status"] == status, after=after, timeout=START_WITHIN
    )
    return csms.frames.index(record)


async def test_tc_044_1_an_update_restarts_into_the_new_version(
    installation: Installation, csms: CentralSystem, wheels: dict[str, Path]
) -> None:
    process = await installation.start()
    try:
        assert await boot(csms, 0) == "0.1.1"

        # Installed beside, restarted into, confirmed after its boot.
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{installation.files.url}/{wheels['0.2.0'].name}")
        assert await boot(csms, start) == "0.2.0"
        installed = await firmware_status(csms, "Installed", start)
        statuses = [p["status"] for p in calls(csms, FIRMWARE, after=start)]
        assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]
        booted = await csms.wait_for_call(CP_ID, "BootNotification", after=start)
        assert csms.frames.index(booted) < installed
        assert process.returncode is None  # restarted in place, the same process
        assert os.readlink(installation.root / "current") == "versions/0.2.0"
        assert not (installation.root / "pending.json").exists()
        assert installation.versions() == ["0.1.1", "0.2.0"]

        # TC_044_3: a broken build cannot start; the launcher rolls back, 0.2.0 reports it.
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{installation.files.url}/{wheels['0.3.0'].name}")
        assert await boot(csms, start) == "0.2.0"
        await firmware_status(csms, "InstallationFailed", start)
        statuses = [p["status"] for p in calls(csms, FIRMWARE, after=start)]
        assert statuses == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
        assert os.readlink(installation.root / "current") == "versions/0.2.0"
        assert not (installation.root / "pending.json").exists()
        # The previous version stays until the next successful update.
        assert "0.1.1" in installation.versions()
        assert process.returncode is None
    finally:
        log = await stopped(process)
    assert "rolled back from 0.3.0 to 0.2.0: it does not start: ImportError: a broken build" in log


async def test_tc_044_3_a_version_that_does_not_reach_the_csms_in_time_is_rolled_back(
    installation: Installation, csms: CentralSystem, wheels: dict[str, Path]
) -> None:
    installation.configure(csms, confirm_timeout=1)
    process = await installation.start()
    try:
        assert await boot(csms, 0) == "0.1.1"
        start = mark(csms)
        await csms.update_firmware(CP_ID, f"{installation.files.url}/{wheels['0.2.0'].name}")
        await firmware_status(csms, "Installing", start)
        await csms.stop()  # the new version finds no central system
        assert process.stderr is not None
        while b"rolling back" not in await asyncio.wait_for(process.stderr.readline(), 30):
            pass
        await csms.start()  # back, on the same port: the previous version boots

        assert await boot(csms, start) == "0.1.1"
        await firmware_status(csms, "InstallationFailed", start)
        assert os.readlink(installation.root / "current") == "versions/0.1.1"
        assert not (installation.root / "pending.json").exists()
    finally:
        await stopped(process)
    # `cp-pi run` keeps its own log file too, where GetDiagnostics takes its lines from.
    log_file = (installation.root.parent / "data" / "cp-pi.log").read_text()
    assert "it did not reach the central system within 1 s; rolling back" in log_file
