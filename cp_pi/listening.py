"""Listening on an address an operator chose: a port in use is a sentence, not a traceback.

The bench and the embedded central system raise :class:`CannotListen` when their socket cannot
be bound; the command line adds which flag changes the port or the address.
"""

from __future__ import annotations

import errno
import socket

from cp_pi.errors import UserError


class CannotListen(UserError):
    """``host:port`` cannot be listened on; ``port_taken`` tells whether the port is the problem."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        self.host = host
        self.port = port
        self.port_taken = error.errno == errno.EADDRINUSE
        super().__init__(f"cannot listen on {host}:{port}: {_reason(error)}")


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"no such host name ({error.strerror})"
    if error.errno == errno.EADDRINUSE:
        return "the port is in use by another program"
    if error.errno == errno.EADDRNOTAVAIL:
        return "not an address of this machine"
    if error.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return error.strerror or str(error)
