"""Live updates for the station's pages: worker threads publish, each page's stream reads.

``Listeners`` holds one asyncio queue per open page (with the page's event loop), and
``publish`` may be called from any thread: it hands the event over with
``call_soon_threadsafe`` and never blocks the worker. ``stream`` turns one queue into a
server-sent-event response. The PE hub, the singing desk and the pre-check desk all use
these two, so every live page behaves the same on a stall, a reconnect or a closed tab.
"""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

KEEP_ALIVE_S = 10
RETRY_MS = 2000


class Listeners:
    """The pages' event queues. ``maxsize`` 0 keeps every event; otherwise a stalled page
    loses its oldest ones (it re-reads its state on the next event anyway)."""

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        self._entries: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue, str | None]] = []
        self._lock = threading.Lock()

    def add(self, topic: str | None = None) -> asyncio.Queue:
        """A queue for the calling page's loop; with a topic, it gets only that topic's events
        (and those published without one)."""
        q: asyncio.Queue = asyncio.Queue(maxsize=self._maxsize)
        with self._lock:
            self._entries.append((asyncio.get_running_loop(), q, topic))
        return q

    def remove(self, q: asyncio.Queue) -> None:
        with self._lock:
            self._entries = [e for e in self._entries if e[1] is not q]

    def publish(self, event: dict, topic: str | None = None) -> None:
        with self._lock:
            entries = list(self._entries)
        for loop, q, wants in entries:
            if topic is not None and wants not in (None, topic):
                continue
            try:
                loop.call_soon_threadsafe(_offer, q, event)
            except RuntimeError:          # that page's loop has closed: it is gone
                self.remove(q)


def _offer(q: asyncio.Queue, event: dict) -> None:
    if q.full():                          # a stalled page: drop the oldest
        q.get_nowait()
    q.put_nowait(event)


def stream(request: Request, q: asyncio.Queue, done: Callable[[asyncio.Queue], None]) -> StreamingResponse:
    """The queue as server-sent events until the page goes; then ``done(q)`` unsubscribes it."""

    async def lines():
        try:
            yield f"retry: {RETRY_MS}\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(q.get(), timeout=KEEP_ALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"      # proxies and browsers drop silent streams
                    continue
                yield f"data: {json.dumps(event, ensure_ascii=False, default=str)}\n\n"
        finally:
            done(q)

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
