"""Downloads and uploads for UpdateFirmware and GetDiagnostics, blocking: run them in a thread.

The standard library does all of it: ``urllib.request`` downloads over http, https and ftp (the
three schemes the central system may name) with the system's CAs, and ``ftplib`` stores a file
(STOR) where ``urllib`` cannot upload. A charger then needs no extra package to fetch its own
update, and none that an update could break.
"""

from __future__ import annotations

import errno
import ftplib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

SCHEMES = ("http", "https", "ftp")
CHUNK = 64 * 1024


class TransferError(Exception):
    """A transfer that did not complete, said in plain words (for the log line)."""


class DiskFull(TransferError):
    """No room left on the device: retrying will not help until space is made."""


def check_location(url: str) -> None:
    """A location we can reach: http, https or ftp with a host."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise TransferError(f"{url!r}: not an http, https or ftp location")


def file_name(url: str) -> str:
    """The last path segment of ``url`` (what the central system called the file)."""
    return unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def download(url: str, target: Path, *, timeout: float) -> int:
    """Fetch ``url`` into ``target`` (written whole or not at all); the number of bytes."""
    check_location(url)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer, partial.open("wb") as out:
            expected = answer.headers.get("Content-Length")
            size = 0
            while chunk := answer.read(CHUNK):
                out.write(chunk)
                size += len(chunk)
            if expected is not None and expected.isdigit() and size != int(expected):
                raise TransferError(f"{url}: the server sent {size} of {expected} bytes")
        os.replace(partial, target)
        return size
    except urllib.error.HTTPError as error:
        raise TransferError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise TransferError(f"{url}: {_reason(error.reason)}") from None
    except http.client.HTTPException as error:  # IncompleteRead: the server went away
        raise TransferError(f"{url}: the transfer broke off ({type(error).__name__})") from None
    except OSError as error:
        raise _os_error(url, error) from None
    finally:
        partial.unlink(missing_ok=True)


def upload(url: str, source: Path, *, timeout: float) -> None:
    """Store ``source`` at ``url``: FTP STOR, or HTTP(S) PUT."""
    check_location(url)
    parts = urlsplit(url)
    try:
        if parts.scheme == "ftp":
            _ftp_store(url, source, timeout=timeout)
            return
        with source.open("rb") as body:
            request = urllib.request.Request(
                url,
                data=body,
                method="PUT",
                headers={
                    "Content-Type": "application/gzip",
                    "Content-Length": str(source.stat().st_size),
                },
            )
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read()
    except urllib.error.HTTPError as error:
        raise TransferError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise TransferError(f"{url}: {_reason(error.reason)}") from None
    except ftplib.Error as error:
        raise TransferError(f"{url}: FTP {str(error).strip()}") from None
    except OSError as error:
        raise _os_error(url, error) from None


def _ftp_store(url: str, source: Path, *, timeout: float) -> None:
    parts = urlsplit(url)
    directory, _, name = unquote(parts.path).rpartition("/")
    with ftplib.FTP(timeout=timeout) as ftp:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        if directory.strip("/"):
            ftp.cwd(directory)
        with source.open("rb") as body:
            ftp.storbinary(f"STOR {name or source.name}", body)


def _os_error(url: str, error: OSError) -> TransferError:
    if error.errno == errno.ENOSPC:
        return DiskFull(f"{url}: no space left on the device")
    return TransferError(f"{url}: {_reason(error)}")


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host name not found"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, ConnectionResetError):
        return "connection reset by the server"
    return str(reason) or type(reason).__name__
