"""The side-by-side layout, seen from the running version: install next to it, switch, confirm.

:mod:`cp_pi.updates.launcher` describes the layout and the trial; this module writes into it.
Every step here blocks (a virtualenv, pip): the caller runs them in a thread.
"""

from __future__ import annotations

import errno
import logging
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from cp_pi.updates.launcher import (
    ROLLED_BACK,
    TRIAL,
    current_version,
    read_record,
    roll_back,
    switch,
    write_record,
)

log = logging.getLogger("cp_pi.firmware")

#: Seconds pip may take to install a new version before the installation fails.
PIP_TIMEOUT = 600


class InstallFailed(Exception):
    """The new version could not be installed; the running one is untouched."""


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = root / "versions"
        self.launcher = root / "launch"

    def managed(self) -> bool:
        """Whether the layout exists (``current`` a symlink into ``versions``, a launcher)."""
        return (self.root / "current").is_symlink() and self.launcher.is_file()

    def runs_this_process(self) -> bool:
        """Whether this interpreter is one of the layout's versions (restarts go through it)."""
        try:
            return Path(sys.prefix).resolve().parent == self.versions.resolve()
        except OSError:
            return False

    def current(self) -> str | None:
        return current_version(self.root)

    def record(self) -> dict[str, Any] | None:
        return read_record(self.root)

    # -- installing ----------------------------------------------------------------------------

    def install(self, archive: Path, version: str, *, pip_args: list[str]) -> None:
        """A new virtualenv ``versions/<version>`` with ``archive`` in it; removed again if
        anything fails. The running version and the pointer are not touched."""
        if not self.managed():
            raise InstallFailed(
                f"no side-by-side layout at {self.root} (systemd/install.sh lays it out)"
            )
        if version == self.current():
            raise InstallFailed(f"{version} is the version running")
        target = self.versions / version
        if target.exists():
            shutil.rmtree(target)  # a left-over of an attempt that failed
        try:
            # --system-site-packages, as install.sh makes them: Debian's python3-lgpio.
            venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(target)
            # The running version's pip installs into the new environment: no ensurepip, and
            # nothing of the new version runs before it is switched to.
            pip = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python")]
            # No cache: the service user has no home to keep one in (ProtectHome=yes).
            options = ["--quiet", "--disable-pip-version-check", "--no-cache-dir", *pip_args]
            result = subprocess.run(
                [*pip, "install", *options, str(archive)],
                capture_output=True,
                text=True,
                timeout=PIP_TIMEOUT,
                check=False,
            )
            if result.returncode != 0:
                lines = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
                raise InstallFailed(f"pip: {lines[-1]}")
        except OSError as error:
            shutil.rmtree(target, ignore_errors=True)
            if error.errno == errno.ENOSPC:
                raise InstallFailed("no space left on the device") from None
            raise InstallFailed(str(error)) from None
        except (InstallFailed, subprocess.TimeoutExpired) as error:
            shutil.rmtree(target, ignore_errors=True)
            if "No space left" in str(error):
                raise InstallFailed("no space left on the device") from None
            raise InstallFailed(str(error)) from None

    def begin_trial(self, version: str) -> None:
        """Record the trial, then switch the pointer: the next start runs ``version``."""
        previous = self.current()
        if previous is None:
            raise InstallFailed(f"{self.root}/current points nowhere")
        write_record(
            self.root, {"state": TRIAL, "version": version, "previous": previous, "starts": 0}
        )
        try:
            switch(self.root, version)
        except OSError as error:
            write_record(self.root, None)
            raise InstallFailed(f"cannot switch to {version}: {error}") from None

    # -- after the restart ---------------------------------------------------------------------

    def roll_back(self, reason: str) -> None:
        record = self.record()
        if record is not None and record.get("state") == TRIAL:
            roll_back(self.root, record, reason)

    def finish(self) -> None:
        """The outcome was reported: forget the record, keep only current and previous."""
        record = self.record()
        write_record(self.root, None)
        if record is None or record.get("state") == ROLLED_BACK:
            return  # the failed version stays for a look; the next update replaces it
        keep = {record["version"], record["previous"]}
        for entry in self.versions.iterdir():
            if entry.name not in keep and not entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)
