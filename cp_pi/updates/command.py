"""``firmware.installer = "command"``: the downloaded file handed to an operator's command.

For whole-system updates (an image updater such as RAUC or SWUpdate): the command gets the
file's path as its last argument, and its exit status decides Installed (0) or
InstallationFailed (anything else). Blocking: run it in a thread.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

#: Seconds the command may take before the installation counts as failed.
COMMAND_TIMEOUT = 3600


def run_installer(command: str, archive: Path, *, timeout: float = COMMAND_TIMEOUT) -> str | None:
    """None when the command installed ``archive``; else what went wrong, in one line."""
    argv = [*shlex.split(command), str(archive)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as error:
        return f"cannot run {argv[0]}: {error.strerror or error}"
    except subprocess.TimeoutExpired:
        return f"{argv[0]} did not finish within {timeout:g} s"
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    said = f": {lines[-1]}" if lines else ""
    return f"{argv[0]} exited with status {result.returncode}{said}"
