"""A TCP relay in front of the test broker that a test can cut and restore.

The embedded broker keeps its topics in memory, so stopping its process would also wipe the
data and the committed offsets, which is not what a broker outage does to a real cluster with
disks. Every client reaches the broker through this relay instead (the broker advertises the
relay's port), and `cut()` makes the broker unreachable the way a stopped broker is: open
connections are reset and new ones refused, until `restore()` listens on the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from monitor.broker import free_port


class FaultProxy:
    """Relay 127.0.0.1:`port` -> 127.0.0.1:`target_port`; a context manager."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def up(self) -> bool:
        return self._listener is not None

    def restore(self) -> None:
        """Accept connections again (the broker is back)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones (the broker is gone)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            doomed, self._open = self._open, set()
        for sock in doomed:
            with contextlib.suppress(OSError):
                # Linger 0: the peer sees a reset, as from a process that died.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._open -= {src, dst}
        src.close()  # each socket is the source of exactly one pump

    def __enter__(self) -> FaultProxy:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
