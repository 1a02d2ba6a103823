"""What a downloaded file is: a cp-pi wheel or sdist (from its own metadata), or refused.

The file's name may lie (a central system names it as it likes), so the archive is opened and
its metadata read: ``*.dist-info/METADATA`` in a wheel, ``PKG-INFO`` at the top of an sdist.
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

PROJECT = "cp-pi"


class NotARelease(Exception):
    """Not something to install: not cp-pi, or a broken archive. The message says which."""


@dataclass(frozen=True)
class Release:
    version: str
    kind: str  # "wheel" or "sdist"
    path: Path


def identify(path: Path) -> Release:
    """The cp-pi release in ``path``; :class:`NotARelease` for anything else."""
    try:
        if zipfile.is_zipfile(path):
            return Release(_version(_wheel_metadata(path)), "wheel", path)
        if tarfile.is_tarfile(path):
            return Release(_version(_sdist_metadata(path)), "sdist", path)
    except OSError as error:
        raise NotARelease(f"cannot read the file: {error}") from None
    if path.name.endswith((".whl", ".tar.gz", ".zip")):
        raise NotARelease(f"corrupt archive: {path.name} cannot be opened")
    raise NotARelease("neither a wheel nor an sdist (not a zip or tar archive)")


def _wheel_metadata(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if n.count("/") == 1]
            found = [n for n in names if n.endswith(".dist-info/METADATA")]
            if len(found) != 1:
                raise NotARelease("a zip archive without wheel metadata (*.dist-info/METADATA)")
            broken = wheel.testzip()
            if broken is not None:
                raise NotARelease(f"corrupt archive: {broken} fails its CRC check")
            return wheel.read(found[0]).decode("utf-8", "replace")
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise NotARelease(f"corrupt archive: {error}") from None


def _sdist_metadata(path: Path) -> str:
    try:
        with tarfile.open(path) as sdist:
            members = sdist.getmembers()  # reads the whole archive: a truncated one fails here
            infos = [m for m in members if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
            if not infos:
                raise NotARelease("a tar archive without sdist metadata (PKG-INFO)")
            extracted = sdist.extractfile(infos[0])
            assert extracted is not None
            return extracted.read().decode("utf-8", "replace")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise NotARelease(f"corrupt archive: {error}") from None


def _version(metadata: str) -> str:
    headers = HeaderParser().parsestr(metadata)
    name = (headers.get("Name") or "").strip()
    if name.lower().replace("_", "-") != PROJECT:
        raise NotARelease(f"a package of {name or 'no name'!r}, not of {PROJECT}")
    version = (headers.get("Version") or "").strip()
    if not version or "/" in version or version.startswith("."):
        raise NotARelease(f"{PROJECT} without a usable version ({version!r})")
    return version
