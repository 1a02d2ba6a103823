"""A websocket connection that stops reading while its own writes are backed up.

websockets answers every ping with a pong as the ping is read, whatever the state of the write
buffer: a central system that sends pings (or CALLs) and never reads its side would make the
charge point buffer answers without limit. Here reading pauses while the write buffer is over
its limit (``write_limit``) as well as while too many frames wait unread (``max_queue``), so TCP
slows such a peer down instead.

The socket's receive buffer is kept small too: each read takes what the kernel holds, and every
frame in it is parsed at once, whatever ``max_queue`` says. With the kernel's default (grown to
megabytes on a fast link) a flood of small CALLs arrives thousands of frames per read, and the
process's memory peaks megabytes higher than with 32 KiB.
"""

from __future__ import annotations

import asyncio
import socket

from websockets.asyncio.client import ClientConnection

#: The socket's receive buffer, in bytes (Linux doubles it for its own bookkeeping).
RECEIVE_BUFFER = 32 * 1024


class BoundedConnection(ClientConnection):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        #: Why reading is paused: "frames" (unread frames over max_queue), "writes" (unsent data
        #: over write_limit). Reading resumes when neither holds.
        self._pauses: set[str] = set()
        self.recv_messages.pause = lambda: self._pause_reading("frames", True)
        self.recv_messages.resume = lambda: self._pause_reading("frames", False)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._pause_reading("writes", True)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._pause_reading("writes", False)

    def _pause_reading(self, reason: str, paused: bool) -> None:
        if paused:
            self._pauses.add(reason)
        else:
            self._pauses.discard(reason)
        if self.transport.is_closing():
            return
        if self._pauses:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
