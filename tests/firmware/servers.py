"""Real file servers on loopback for the firmware and diagnostics tests: the embedded CSMS's
HTTP file server, an FTP server (pyftpdlib), one that breaks off mid-transfer, and a port
nobody listens on."""

from __future__ import annotations

import socket
import threading
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # pyftpdlib is built on asyncore and asynchat, which Python 3.11 calls deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer


@contextmanager
def ftp_server(directory: Path) -> Iterator[str]:
    """An FTP server with user ``cp`` (password ``pi``) that may read and write ``directory``;
    yields its base URL."""
    authorizer = DummyAuthorizer()
    authorizer.add_user("cp", "pi", str(directory), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"ftp://cp:pi@127.0.0.1:{server.address[1]}"
    finally:
        server.close_all()
        thread.join(5)


@contextmanager
def breaking_server(size: int = 100_000) -> Iterator[str]:
    """An HTTP server that promises ``size`` bytes, sends a tenth of them and hangs up."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(b"x" * (size // 10))
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """An address on loopback where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def fake_release(path: Path, *, name: str = "cp-pi", version: str = "9.9.0") -> Path:
    """A wheel-shaped zip with only its metadata: enough for the checks before installing."""
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(
            f"cp_pi-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        wheel.writestr("cp_pi/__init__.py", "# " + "x" * 4000 + "\n")
    return path
