from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cp_pi.csms.files import FileServer


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    """The embedded central system's HTTP file server on loopback, serving ``tmp_path/files``."""
    server = FileServer(tmp_path / "files")
    server.start()
    try:
        yield server
    finally:
        server.stop()
