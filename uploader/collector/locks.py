"""One request at a time per upload, and the newest request wins.

A request that wants an upload someone else holds asks the holder to stop and waits for it to
let go, as the reference server (@tus/server) does: a stalled first client (a sleeping laptop,
a hung process) must not keep a resuming second client out until the idle timeout. The holder
stops the way it would on a disconnect: what it has received and can vouch for is made durable
and counted, then it answers and lets go. So the second client's HEAD, which waits too, sees
the offset that really counts.
"""
from __future__ import annotations

import asyncio
import contextlib

# How long a request waits for the holder it asked to stop. A holder stops within one block
# written and one fsync; only a disk that hangs makes a request wait this long (then 409 busy).
TAKEOVER_WAIT_S = 30.0


class Hold:
    """The request holding an upload; `stop_asked` is its signal to wind down."""

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.released = asyncio.Event()
        self.stop_asked = False
        # True only while the holder awaits the client's next bytes: the one await where
        # cancelling it loses nothing (no block is in flight to the disk then).
        self.waiting_for_bytes = False

    def ask_to_stop(self) -> None:
        if not self.stop_asked:
            self.stop_asked = True
            if self.waiting_for_bytes and self.task is not None:
                self.task.cancel()

    def stopped_by_cancel(self) -> bool:
        """In an `except CancelledError` around the wait for bytes: True when the cancel was
        only our request to stop (then it is absorbed); False when something else cancels."""
        return self.stop_asked and self.task is not None and self.task.uncancel() == 0


class UploadLocks:
    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}

    def locked(self, upload_id: str) -> bool:
        return upload_id in self._holds

    async def take_over(self, upload_id: str, busy: Exception) -> None:
        """Ask whoever holds the upload to stop and wait until nobody does; `busy` is raised
        when a holder does not let go in time."""
        while (current := self._holds.get(upload_id)) is not None:
            current.ask_to_stop()
            try:
                async with asyncio.timeout(TAKEOVER_WAIT_S):
                    await current.released.wait()
            except TimeoutError:
                raise busy from None

    def fence(self, hold: Hold) -> None:
        """Inside the transaction that records what a holder wrote: refuse when the hold is no
        longer the upload's. In one process a holder lets go only after recording."""

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, busy: Exception):
        await self.take_over(upload_id, busy)
        hold = self._holds[upload_id] = Hold()  # no await since take_over saw it free
        try:
            yield hold
        finally:
            if self._holds.get(upload_id) is hold:
                del self._holds[upload_id]
            hold.released.set()
