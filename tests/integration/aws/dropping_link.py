"""A TCP link in front of a server that a test cuts and restores, keeping its
port bound while cut (tests/integration/api/link.py's Link gives it up)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

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
        with self._lock:
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        if self._listener is None:
            super().restore()
        self.down = False

    def close(self) -> None:
        super().cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.down:  # as a peer that is not there: reset
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
                client.close()
                self.reset += 1
                continue
            try:
                server = socket.create_connection((self.host, self.target_port), timeout=30)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
                self.forwarded += 1
            threading.Thread(target=self._pipe, args=(client, server, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False),
                             daemon=True).start()
