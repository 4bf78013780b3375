"""A TCP load balancer on 127.0.0.1 for the multi-instance drills: the one address stations use.

Each new connection goes to the next backend port in turn (round robin). A backend that
refuses the connection (its collector killed or not started yet) is skipped for that
connection, as a load balancer's health check would take it out, and tried again when its
turn comes round. A connection stays with the backend it was given for its whole life; a
backend that dies drops its connections (the station sees a reset and retries, landing on
another backend).

The bytes are forwarded by tests/uploader/proxy.py's Proxy (one thread per connection), so
its faults (reset_after, stall_after, flip_at) work through the balancer too.
"""
from __future__ import annotations

import socket
import threading

from tests.uploader.proxy import Proxy


class Balancer(Proxy):
    def __init__(self, backend_ports: list[int], **faults):
        if not backend_ports:
            raise ValueError("a balancer needs at least one backend port")
        self.backends = list(backend_ports)
        self.connections_per_backend = {port: 0 for port in self.backends}
        self.refused_per_backend = {port: 0 for port in self.backends}
        self._next = 0
        self._turn = threading.Lock()
        # Proxy starts accepting at the end of its __init__: our state must exist before.
        super().__init__(self.backends[0], **faults)

    def _connect(self) -> socket.socket | None:
        with self._turn:
            start = self._next
            self._next = (self._next + 1) % len(self.backends)
        for i in range(len(self.backends)):
            port = self.backends[(start + i) % len(self.backends)]
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                with self._turn:
                    self.refused_per_backend[port] += 1
                continue
            upstream.settimeout(None)
            with self._turn:
                self.connections_per_backend[port] += 1
            return upstream
        return None                     # every backend refused: the client's connection is closed
