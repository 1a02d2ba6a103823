"""The launcher's start-up decision, on a layout of stand-in interpreters (shell scripts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cp_pi.updates.launcher import ROLLED_BACK, TRIAL, check, switch


def layout(root: Path, *, new_python: str = "exit 0") -> Path:
    """versions/1.0 (current) and versions/2.0, whose python runs ``new_python``."""
    for version, script in (("1.0", "exit 0"), ("2.0", new_python)):
        python = root / "versions" / version / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f"#!/bin/sh\n{script}\n")
        python.chmod(0o755)
    (root / "current").symlink_to("versions/1.0")
    return root


def on_trial(root: Path, starts: int = 0) -> None:
    switch(root, "2.0")
    record = {"state": TRIAL, "version": "2.0", "previous": "1.0", "starts": starts}
    (root / "pending.json").write_text(json.dumps(record))


def record(root: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((root / "pending.json").read_text())
    return loaded


def test_the_first_start_of_a_sound_version_goes_ahead(tmp_path: Path) -> None:
    root = layout(tmp_path)
    on_trial(root)

    check(root, ["run", "--config", "/etc/cp-pi/cp-pi.toml"])

    assert os.readlink(root / "current") == "versions/2.0"
    assert record(root)["starts"] == 1


def test_a_version_whose_check_config_fails_is_rolled_back(tmp_path: Path) -> None:
    refuse = (
        f'echo "$@" > {tmp_path}/args; echo "cp-pi: config error: firmware.x: extra" >&2; exit 2'
    )
    root = layout(tmp_path, new_python=refuse)
    on_trial(root)

    check(root, ["run", "--config", "/etc/cp-pi/cp-pi.toml"])

    assert os.readlink(root / "current") == "versions/1.0"
    assert record(root)["state"] == ROLLED_BACK
    assert record(root)["reason"] == "it does not start: cp-pi: config error: firmware.x: extra"
    assert (root / "args").read_text().split()[-3:] == [
        *("check-config", "--config", "/etc/cp-pi/cp-pi.toml")
    ]


def test_a_second_start_on_trial_means_the_first_one_died_and_rolls_back(tmp_path: Path) -> None:
    # What systemd's Restart=on-failure (or the watchdog's kill) leads to after a crash.
    root = layout(tmp_path)
    on_trial(root, starts=1)

    check(root, ["run", "--config", "/etc/cp-pi/cp-pi.toml"])

    assert os.readlink(root / "current") == "versions/1.0"
    assert record(root)["reason"] == "it stopped before it reached the central system"


def test_a_rolled_back_record_is_left_for_the_previous_version_to_report(tmp_path: Path) -> None:
    root = layout(tmp_path)
    (root / "pending.json").write_text(
        json.dumps({"state": ROLLED_BACK, "version": "2.0", "previous": "1.0", "reason": "x"})
    )

    check(root, ["run", "--config", "/etc/cp-pi/cp-pi.toml"])

    assert os.readlink(root / "current") == "versions/1.0"
    assert record(root)["state"] == ROLLED_BACK


def test_the_switch_replaces_the_link_in_one_step(tmp_path: Path) -> None:
    root = layout(tmp_path)
    before = (root / "current").lstat().st_ino

    switch(root, "2.0")

    assert os.readlink(root / "current") == "versions/2.0"
    assert (root / "current").lstat().st_ino != before  # a new link renamed over the old one
    assert sorted(p.name for p in root.iterdir()) == ["current", "versions"]  # no draft left
