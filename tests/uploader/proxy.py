"""A small TCP proxy on 127.0.0.1 that misbehaves on purpose: the school's bad link.

It counts the bytes it forwards from the station to the collector, and can flip one byte
of that stream once, reset connections, or stall them (stop forwarding, keep them open).
"""
from __future__ import annotations

import select
import socket
import struct
import threading


class Proxy:
    def __init__(self, target_port: int, *, flip_at: int | None = None,
                 reset_after: int | None = None, resets: int = 0,
                 stall_after: int | None = None, stalls: int = 0, stall_s: float = 3.0):
        self.target = ("127.0.0.1", target_port)
        self.flip_at = flip_at          # byte offset inside one connection's upstream stream
        self.flipped = False
        self.reset_after, self.resets_left = reset_after, resets
        self.stall_after, self.stalls_left = stall_after, stalls
        self.stall_s = stall_s          # then the dead link is noticed and torn down (RST)
        self.upstream_bytes = 0         # station -> collector, all connections
        self.connections = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.closing = threading.Event()
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = self._connect()
            if upstream is None:
                client.close()
                continue
            with self.lock:
                self.connections += 1
                self.socks += [client, upstream]
                reset = stall = None
                if self.resets_left and self.reset_after is not None:
                    self.resets_left -= 1
                    reset = self.reset_after
                elif self.stalls_left and self.stall_after is not None:
                    self.stalls_left -= 1
                    stall = self.stall_after
            threading.Thread(target=self._pump, args=(client, upstream, reset, stall), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        """The upstream end of a new connection, None if the target refuses it (the
        balancer in tests/uploader/collector/balancer.py picks among several here)."""
        try:
            return socket.create_connection(self.target)
        except OSError:
            return None

    def _pump(self, client: socket.socket, upstream: socket.socket, reset: int | None, stall: int | None) -> None:
        """Both directions of one connection in one thread, so a reset closes sockets no other
        thread is blocked on (a close under a blocked recv would send nothing on Linux)."""
        seen = 0
        # poll, not select: a balancer for a thousand stations holds fds past select's 1024.
        poller = select.poll()
        for sock in (client, upstream):
            poller.register(sock, select.POLLIN)
        try:
            while not self.closing.is_set():
                fds = {fd for fd, _ in poller.poll(200)}
                ready = [sock for sock in (client, upstream) if sock.fileno() in fds]
                if upstream in ready:
                    data = upstream.recv(256 * 1024)
                    if not data:
                        break
                    client.sendall(data)
                if client not in ready:
                    continue
                data = client.recv(256 * 1024)
                if not data:
                    break
                if stall is not None and seen + len(data) > stall:
                    # Forward nothing more and keep both ends open, as a dead link does, until
                    # the operating system would give up on it.
                    self.closing.wait(self.stall_s)
                    return _reset(client, upstream)
                if reset is not None and seen + len(data) > reset:
                    return _reset(client, upstream)
                if self.flip_at is not None and seen <= self.flip_at < seen + len(data):
                    with self.lock:
                        flip = not self.flipped
                        self.flipped = True
                    if flip:
                        data = bytearray(data)
                        data[self.flip_at - seen] ^= 0x20
                        data = bytes(data)
                seen += len(data)
                with self.lock:
                    self.upstream_bytes += len(data)
                upstream.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self.closing.set()
        self.server.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


def _reset(*socks: socket.socket) -> None:
    """Close with RST, not FIN: a hard reset, as a broken link gives."""
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass
