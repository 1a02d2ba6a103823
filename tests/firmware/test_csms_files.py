"""`cp-pi csms --files DIR`: the embedded central system serves firmware and takes uploads."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def files_url(tmp_path: Path) -> Iterator[str]:
    """A `cp-pi csms --files` process; the URL it prints for its files."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "cp_pi", "csms", "--port", "0"),
            *("--files", str(tmp_path / "files"), "--files-port", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()  # printed once it listens
        assert line.startswith("files: http://127.0.0.1:"), line
        yield line.split()[1].rstrip("/")
    finally:
        process.terminate()
        process.wait(10)


def test_a_put_file_can_be_downloaded_again(files_url: str, tmp_path: Path) -> None:
    body = b"diagnostics" * 100
    put = urllib.request.Request(f"{files_url}/report.tar.gz", data=body, method="PUT")
    with urllib.request.urlopen(put, timeout=10) as answer:
        assert answer.status == 201

    assert (tmp_path / "files" / "report.tar.gz").read_bytes() == body
    with urllib.request.urlopen(f"{files_url}/report.tar.gz", timeout=10) as answer:
        assert answer.read() == body


def test_a_put_outside_the_directory_is_refused(files_url: str, tmp_path: Path) -> None:
    put = urllib.request.Request(f"{files_url}/../escape", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put, timeout=10)

    assert refused.value.code == 403
    assert not (tmp_path / "escape").exists()
