#!/usr/bin/env python3
"""The start-up check of the side-by-side layout; installed as ``<root>/launch``.

Layout (``systemd/install.sh`` makes it)::

    <root>/versions/<version>/   a virtualenv each, with that version of cp-pi
    <root>/current               symlink to versions/<the one that runs>
    <root>/launch                this file: the unit's ExecStart and every in-place restart
    <root>/pending.json          while an update is on trial (below)

This file belongs to no version and imports nothing but the standard library, so that a
broken new version cannot break the one thing that rolls it back. It reads the pending record
(beside the pointer it is about: it runs before any configuration is read):

- ``trial``: the new version was switched to and has not yet reached the central system. Its
  first start is tried here: its ``cp-pi check-config`` must import it and accept the
  configuration file as ``run`` would (a refusal there is exit status 2, on which systemd does
  not restart the unit), and the charge point's modules must import; a version that cannot is
  rolled back at once. A second start in the trial means the first one died or was killed
  (systemd restarts the unit on failure, the watchdog kills a hung loop) before it confirmed:
  rolled back too.
- ``rolled_back``: left for the previous version to report InstallationFailed after its boot.

Then it replaces itself with ``<the version current points to>/bin/python -m cp_pi ARGS``
(same PID, which is what systemd watches). The running version confirms (deletes the record)
once its BootNotification is accepted, or rolls back itself when that takes longer than
``firmware.confirm_timeout``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RECORD = "pending.json"
TRIAL = "trial"
ROLLED_BACK = "rolled_back"
#: Seconds the new version's ``check-config`` may take before the launcher gives up on it.
CHECK_TIMEOUT = 60
#: What the check runs: the charge point's modules imported, then ``cp-pi check-config``.
_CHECK = "import sys, cp_pi.app; from cp_pi.commands.cli import main; sys.exit(main(sys.argv[1:]))"


def read_record(root: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads((root / RECORD).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        say(f"unreadable {RECORD} ({error}); ignored")
        return None
    return record


def write_record(root: Path, record: dict[str, Any] | None) -> None:
    """Replace the record in one step (None removes it)."""
    path = root / RECORD
    if record is None:
        path.unlink(missing_ok=True)
        return
    draft = path.with_name(f".{RECORD}.{os.getpid()}")
    with draft.open("w") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(draft, path)


def current_version(root: Path) -> str | None:
    try:
        return Path(os.readlink(root / "current")).name
    except OSError:
        return None


def switch(root: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` in one step: a new symlink renamed over it."""
    if not (root / "versions" / version / "bin" / "python").exists():
        raise FileNotFoundError(f"{root}/versions/{version} is not an installed version")
    draft = root / f".current.{os.getpid()}"
    draft.unlink(missing_ok=True)
    draft.symlink_to(Path("versions") / version)
    os.replace(draft, root / "current")
    directory = os.open(root, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def roll_back(root: Path, record: dict[str, Any], reason: str) -> None:
    """Back to the previous version, with the reason kept for it to report."""
    switch(root, record["previous"])
    write_record(root, {**record, "state": ROLLED_BACK, "reason": reason})
    say(f"rolled back from {record['version']} to {record['previous']}: {reason}")


def config_flags(argv: list[str]) -> list[str]:
    """The ``--config FILE`` of a ``run`` command line, for ``check-config``."""
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            return argv[index : index + 2]
        if arg.startswith("--config="):
            return [arg]
    return []


def refuses_to_start(python: Path, argv: list[str]) -> str | None:
    """None when ``python`` imports cp-pi's charge point and its ``check-config`` accepts the
    configuration as ``run`` would; else its last line of complaint."""
    try:
        result = subprocess.run(
            [str(python), "-c", _CHECK, "check-config", *config_flags(argv)],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def check(root: Path, argv: list[str]) -> None:
    """The decision at each start; see the module's docstring."""
    record = read_record(root)
    if record is None or record.get("state") != TRIAL:
        return
    if current_version(root) != record["version"]:
        return
    starts = int(record.get("starts", 0)) + 1
    write_record(root, {**record, "starts": starts})
    if starts > 1:
        roll_back(root, record, "it stopped before it reached the central system")
        return
    problem = refuses_to_start(root / "versions" / record["version"] / "bin" / "python", argv)
    if problem is not None:
        roll_back(root, record, f"it does not start: {problem}")


def say(text: str) -> None:
    print(f"cp-pi launch: {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    root = Path(__file__).resolve().parent
    if argv[:1] == ["run"]:  # the service starting; `cp-pi check-config` by hand is no trial
        try:
            check(root, argv)
        except (OSError, KeyError, ValueError) as error:  # never keep the charger from starting
            say(f"start-up check failed: {error}")
    python = (root / "current").resolve() / "bin" / "python"
    os.execv(python, [str(python), "-m", "cp_pi", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
