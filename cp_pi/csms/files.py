"""The embedded central system's file server: firmware to download, a place for diagnostics.

``GET /NAME`` serves a file of the directory (what UpdateFirmware's ``location`` names);
``PUT /NAME`` stores one there (where GetDiagnostics uploads). Plain ``http.server`` in a
thread of its own: it is for loopback and the bench, not for the internet.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cp_pi.listening import CannotListen

log = logging.getLogger("cp_pi.csms.files")

#: The largest upload accepted, in bytes.
MAX_UPLOAD = 256 * 1024 * 1024


class FileServer:
    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = _handler_for(self.directory)
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as error:
            raise CannotListen(self.host, self.port, error) from error
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="csms files", daemon=True
        )
        self._thread.start()
        log.info("central system files: %s/ serves %s", self.url, self.directory)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _handler_for(directory: Path) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_PUT(self) -> None:
            name = unquote(urlsplit(self.path).path).strip("/")
            length = self.headers.get("Content-Length", "")
            if not name or "/" in name or name.startswith("."):
                self.send_error(HTTPStatus.FORBIDDEN, "PUT a plain file name: /NAME")
                return
            if not length.isdigit() or int(length) > MAX_UPLOAD:
                self.send_error(HTTPStatus.LENGTH_REQUIRED, "Content-Length up to 256 MiB")
                return
            data = self.rfile.read(int(length))
            (directory / name).write_bytes(data)
            log.info("received %s (%d bytes)", name, len(data))
            self.send_response(HTTPStatus.CREATED)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler
