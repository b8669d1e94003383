"""A TCP link between a console and its server that a test can break: a small
proxy on a loopback port in front of the API. ``cut()`` closes it (new
connections are refused, open ones reset), ``restore()`` opens the same port
again, and ``lose_answers`` forwards requests but drops the answers, as a
connection that dies while the server is still answering."""

from __future__ import annotations

import contextlib
import socket
import threading


class Link:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.lose_answers = False
        self.forwarded = 0  # connections passed to the server
        self.forwarded_paths: list[str] = []  # the path of each request passed on
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.restore()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._close_open()

    def _close_open(self) -> None:
        """Reset every connection passed through so far."""
        with self._lock:
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _admit(self, client: socket.socket) -> bool:
        """Whether an accepted connection is passed on (a subclass may refuse)."""
        return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._admit(client):
                continue
            try:
                server = socket.create_connection((self.host, self.target_port), timeout=30)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
                self.forwarded += 1
            lose = self.lose_answers
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, lose), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, drop: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if drop:
                    # The server answered: the line dies before the answer arrives.
                    break
                if data[:8].split(b" ")[0] in (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH"):
                    line = data.split(b"\r\n", 1)[0].split(b" ")
                    if len(line) >= 2:
                        self.forwarded_paths.append(line[1].decode("latin-1").split("?")[0])
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
                with self._lock:
                    self._open.discard(s)
