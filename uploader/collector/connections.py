"""Connection limits uvicorn does not set: a deadline for a request's headers, and a cap on
open connections.

uvicorn's keep-alive timer starts only after a first response and stops at the first byte of
the next request, so a client that connects and sends nothing, or sends its headers a byte
at a time (slowloris), holds a connection for ever; ``limit_concurrency`` answers 503 only
once a request is complete, so idle sockets are never refused. Here every connection must
finish each request's headers within ``header_timeout`` seconds of the moment the server
starts waiting for them (connection made, or the last response sent plus the keep-alive
time), or it is closed; connections beyond ``max_connections`` are closed at once. Bodies
have their own idle timeouts where they are read (``local_uploads.pump``, ``stations.read_body``).
"""
from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn's C parser when installed (the PATCH path's speed, see docs/PERFORMANCE.md)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is a dependency; pure-Python h11 otherwise
    _Base = H11Protocol

log = logging.getLogger("qm.collector")

DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_MAX_CONNECTIONS = 1000


def guarded_protocol(header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                     max_connections: int = DEFAULT_MAX_CONNECTIONS,
                     base: type = _Base) -> type:
    """uvicorn's protocol class ``base`` (httptools' or h11's: both keep ``cycle``,
    ``connections`` and ``on_response_complete``) with the two limits added."""
    if header_timeout <= 0 or max_connections <= 0:
        raise ValueError("header_timeout and max_connections must be positive")

    class GuardedProtocol(base):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("connection refused: %d open, limit %d", len(self.connections) - 1,
                            max_connections)
                transport.abort()
                return
            self.arm(header_timeout)

        def connection_lost(self, exc) -> None:
            self.disarm()
            super().connection_lost(exc)

        def in_app(self) -> bool:
            """A request is with the application, which times its body reads itself."""
            return self.cycle is not None and not self.cycle.response_complete

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.in_app():
                self.disarm()
            elif self.deadline is None:  # bytes of a request not yet complete, or left over
                self.arm(header_timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.in_app():
                # Kept alive: the next request's headers (or the unread rest of this body)
                # must come within the keep-alive time plus the header time.
                self.arm(self.timeout_keep_alive + header_timeout)

        def arm(self, seconds: float) -> None:
            self.disarm()
            self.deadline = self.loop.call_later(seconds, self.too_slow)

        def disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def too_slow(self) -> None:
            self.deadline = None
            if not self.in_app() and not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol
