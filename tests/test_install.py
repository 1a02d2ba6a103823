"""systemd/install.sh run for real with bash into a scratch root (DESTDIR), without a network.

The package it installs is a wheel of this very tree, built offline with the test environment's
own setuptools; pip's PIP_NO_INDEX and PIP_NO_DEPS keep it from looking anything up. cp-pi's
dependencies (and pip) are lent to the scratch root's virtualenv from this environment by a
``.pth`` file, the way Debian's python3-lgpio is lent to it on a Pi, so that the script's
``cp-pi check-config`` runs for real.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cp_pi.config import load_settings

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / "systemd" / "install.sh"
VENV_PYTHON = Path(sys.executable)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this tree; the build runs on a copy, as it leaves build files behind."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    shutil.copytree(
        PROJECT / "cp_pi", source / "cp_pi", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(wheels), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    [built] = wheels.glob("cp_pi-*.whl")
    return built


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This environment's packages, all but cp-pi itself (pip must install the wheel)."""
    lent = tmp_path_factory.mktemp("dependencies")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("cp_pi", "__editable__")) and entry.suffix != ".pth":
            (lent / entry.name).symlink_to(entry)
    return lent


def install(root: Path, wheel: Path) -> str:
    """Run the script into ``root`` and return what it printed."""
    environ = {
        **os.environ,
        "DESTDIR": str(root),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_CACHE_DIR": str(root.parent / "pip-cache"),
        # The virtualenv is made from the python3 found first, as on a Pi: this suite's own.
        "PATH": f"{VENV_PYTHON.parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "--source", str(wheel)],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: mode, modification time and content (or link target)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            content = f"-> {os.readlink(path)}"
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = "directory"
        entries[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, content)
    return entries


@pytest.fixture
def root(tmp_path: Path, dependencies: Path) -> Path:
    """A scratch root whose virtualenv, made as the script makes it, can see ``dependencies``."""
    scratch = tmp_path / "root"
    venv = scratch / "opt/cp-pi/versions/.staging"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "lent-dependencies.pth").write_text(f"{dependencies}\n")
    return scratch


def configure(root: Path, csms_url: str) -> None:
    """What the operator does next: name the central system in the new file."""
    config = root / "etc/cp-pi/cp-pi.toml"
    text = config.read_text()
    assert '\n# csms_url = "' in text
    config.write_text(text.replace('\n# csms_url = "', f'\ncsms_url = "{csms_url}"\n# was: "', 1))


def test_it_installs_the_service_into_a_scratch_root(root: Path, wheel: Path) -> None:
    install(root, wheel)

    unit = root / "etc/systemd/system/cp-pi.service"
    assert unit.read_text() == (PROJECT / "systemd/cp-pi.service").read_text()
    assert mode(unit) == 0o644
    config = root / "etc/cp-pi/cp-pi.toml"
    assert mode(config) == 0o640
    command = root / "opt/cp-pi/launch"
    version = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("cp-pi ")


def test_the_new_configuration_names_the_services_data_dir_and_pin_factory(
    root: Path, wheel: Path
) -> None:
    install(root, wheel)

    settings = load_settings(root / "etc/cp-pi/cp-pi.toml", environ={})
    assert settings.data_dir == Path("/var/lib/cp-pi")
    assert settings.pin_factory == "lgpio"
    assert settings == load_settings(PROJECT / "cp-pi.example.toml", environ={}).model_copy(
        update={"data_dir": Path("/var/lib/cp-pi"), "pin_factory": "lgpio"}
    )


def test_a_second_run_changes_nothing(root: Path, wheel: Path) -> None:
    install(root, wheel)
    first = tree(root)

    output = install(root, wheel)

    assert tree(root) == first
    assert "creating" not in output
    assert "installing" not in output


def test_an_existing_configuration_is_kept_but_made_private(root: Path, wheel: Path) -> None:
    config = root / "etc/cp-pi/cp-pi.toml"
    config.parent.mkdir(parents=True)
    config.write_text('charge_point_id = "site-7"\n')
    config.chmod(0o644)

    install(root, wheel)

    assert config.read_text() == 'charge_point_id = "site-7"\n'
    assert mode(config) == 0o640


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (Debian: shellcheck)"
)
def test_shellcheck_finds_nothing() -> None:
    result = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_unconfigured_it_enables_the_service_but_does_not_start_it(root: Path, wheel: Path) -> None:
    output = install(root, wheel).splitlines()

    assert "install.sh: skipped: systemctl enable cp-pi.service" in output
    assert not any("systemctl start" in line for line in output)
    problem = output.index(
        "install.sh: installed and enabled, not started: the configuration cannot run yet:"
    )
    assert output[problem + 1].startswith("  cp-pi: config error: csms_url: required on real pins")
    assert output[problem + 2] == (
        "install.sh: next: edit /etc/cp-pi/cp-pi.toml, then `sudo systemctl restart cp-pi`"
    )


def test_once_configured_a_second_run_starts_it(root: Path, wheel: Path) -> None:
    install(root, wheel)
    configure(root, "ws://csms.example.com:9000/ocpp")

    output = install(root, wheel).splitlines()

    assert "install.sh: skipped: systemctl start cp-pi.service" in output
    assert not any("next:" in line or "config error" in line for line in output)


def test_the_check_reads_the_file_with_the_services_environment(root: Path, wheel: Path) -> None:
    # The unit's CP_PI_PIN_FACTORY=lgpio beats the file, as it does for the service: real pins,
    # so the embedded central system cannot stand in for a missing csms_url.
    config = root / "etc/cp-pi/cp-pi.toml"
    config.parent.mkdir(parents=True)
    config.write_text('pin_factory = "mock"\n')

    output = install(root, wheel)

    assert "csms_url: required on real pins" in output
    assert "systemctl start" not in output


def test_an_unconfigured_start_fails_once_without_using_up_the_start_limit(
    root: Path, wheel: Path
) -> None:
    install(root, wheel)
    unit = (PROJECT / "systemd/cp-pi.service").read_text().splitlines()
    environment = [line.removeprefix("Environment=") for line in unit if "Environment=" in line]

    # What systemd would run at the next boot, with the unit's environment and nothing else.
    started = subprocess.run(
        [
            *(
                "env",
                "-i",
                *(setting.replace("%S", str(root / "var/lib")) for setting in environment),
            ),
            *(str(root / "opt/cp-pi/launch"), "run"),
            *("--config", str(root / "etc/cp-pi/cp-pi.toml")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.stderr.startswith("cp-pi: config error: csms_url: required on real pins")
    # A status the unit does not restart on: the service fails once, the start limit is untouched.
    assert "Restart=on-failure" in unit
    assert f"RestartPreventExitStatus={started.returncode}" in unit


def test_cp_pi_is_on_the_path(root: Path, wheel: Path) -> None:
    install(root, wheel)

    link = root / "usr/local/bin/cp-pi"
    assert os.readlink(link) == "/opt/cp-pi/launch"
    assert (root / "opt/cp-pi/launch").is_file()


def test_it_lays_out_the_side_by_side_versions(root: Path, wheel: Path) -> None:
    install(root, wheel)

    home = root / "opt/cp-pi"
    version = wheel.name.split("-")[1]
    assert os.readlink(home / "current") == f"versions/{version}"
    assert sorted(p.name for p in (home / "versions").iterdir()) == [version]
    assert (home / "current/bin/python").exists()
    launcher = PROJECT / "cp_pi/updates/launcher.py"
    assert (home / "launch").read_bytes() == launcher.read_bytes()
    assert mode(home / "launch") == 0o755
    unit = (PROJECT / "systemd/cp-pi.service").read_text()
    assert "ExecStart=/opt/cp-pi/launch run" in unit
    assert "ReadWritePaths=/opt/cp-pi" in unit
