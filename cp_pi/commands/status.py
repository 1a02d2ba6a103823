"""`cp-pi status`: ask the running charge point over its local socket and print the answer.

The socket's two ends (the service's answer, :func:`~cp_pi.status_socket.ask`) live in
:mod:`cp_pi.status_socket`; this is the command: where to look, what to print, the exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cp_pi.status_socket import SOCKET_NAME, CannotAsk, ask, render

#: The systemd unit's RuntimeDirectory=, where `cp-pi status` looks first.
SERVICE_RUNTIME_DIR = Path("/run/cp-pi")
#: Exit statuses of `cp-pi status`, as systemctl's: 3 not running, 4 state unknown.
NOT_RUNNING, CANNOT_ASK = 3, 4


def run_status(data_dir: Path | None, config: Path | None, *, as_json: bool) -> int:
    """`cp-pi status`: 0 and the status, 3 when no charge point runs, 4 when it cannot be asked."""
    paths = [directory / SOCKET_NAME for directory in _places(data_dir, config)]
    for path in paths:
        try:
            document = ask(path)
        except (FileNotFoundError, ConnectionRefusedError):
            continue
        except (CannotAsk, OSError) as error:
            print(f"cp-pi: {error}", file=sys.stderr)
            return CANNOT_ASK
        print(json.dumps(document, indent=2) if as_json else render(document))
        return 0
    where = " or ".join(str(path) for path in paths)
    print(f"cp-pi: the charge point is not running (nothing answers at {where})", file=sys.stderr)
    return NOT_RUNNING


def _places(data_dir: Path | None, config: Path | None) -> list[Path]:
    """The given data directory; else the service's runtime directory, then the configured one."""
    if data_dir is not None:
        return [data_dir]
    from cp_pi.config import ConfigError, load_settings

    try:
        configured = load_settings(config).data_dir
    except ConfigError:  # a file only the service may read: its socket is what counts
        return [SERVICE_RUNTIME_DIR]
    return [SERVICE_RUNTIME_DIR, configured]
