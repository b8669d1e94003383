"""A TCP link in front of a server that a test cuts and restores, keeping its
port bound while cut (tests/integration/api/link.py's Link gives it up)."""

from __future__ import annotations

import socket
import struct

from tests.integration.api.link import Link


class DroppingLink(Link):
    """A link whose port stays bound while it is cut: connections are reset at
    once. Giving the port up would let the sandbox's own outgoing connections
    take it as their ephemeral port meanwhile (it runs hundreds of them), and
    the link could not come back on it."""

    def __init__(self, target_port: int) -> None:
        self.down = False
        self.reset = 0  # connections reset while cut
        super().__init__(target_port)

    def cut(self) -> None:
        self.down = True
        self._close_open()

    def restore(self) -> None:
        if self._listener is None:
            super().restore()
        self.down = False

    def close(self) -> None:
        super().cut()

    def _admit(self, client: socket.socket) -> bool:
        if not self.down:
            return True
        # as a peer that is not there: reset
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        self.reset += 1
        return False
