"""One request at a time per upload across every collector instance on one index.

locks.py's rule (the newest request takes over: the holder is asked to stop, lets go, the
asker waits up to TAKEOVER_WAIT_S, else busy), kept where several collector processes share
one PostgreSQL: a station's resumed PATCH may reach another instance than its stalled first.

A hold is a row of ``upload_holds``: a lease. Its instance (one random id per SharedLocks =
per process) renews the leases of all its holds in one statement every RENEW_EVERY_S and, in
the same statement, reads which of them another instance asked to stop. A row whose lease
ran out (its process was killed, frozen or cut off from the database) is free for the taking.
Time is the database's clock, so instances on machines whose clocks differ agree on expiry.

A lease can run out under a process that is only slow, so the lease alone cannot keep two
writers apart: the upload store checks ``fence(hold)`` inside the transaction that records
an offset. It locks the hold's row, so a takeover waits for that commit or comes before the
check and is seen by it: a request that lost its hold never records an offset.

The statements of taking, waiting and letting go run in worker threads (the renewal in its
own): a database that does not answer must not freeze the event loop, and a renewal that hangs
is noticed as one that failed. ``locked`` and ``fence`` run where they are called (``fence``
must: inside the caller's transaction); each is one short statement.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import secrets
import time

from . import locks
from .index import POSTGRESQL, Index
from .locks import Hold

log = logging.getLogger("qm.collector")

# A hold not renewed for this long is free for another instance to take. Renewal every quarter
# of it: three renewals may fail (a PostgreSQL restart takes a few seconds) before it matters.
LEASE_S = 10.0
# How often a request waiting for another instance's holder looks again. A holder asked to stop
# sees it at its instance's next renewal (≤ RENEW_EVERY_S), lets go, and is seen gone here.
POLL_S = 0.05

# The database's clock in epoch seconds, as a number both dialects compare alike.
_NOW = {POSTGRESQL: "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)",
        "sqlite": "((julianday('now') - 2440587.5) * 86400.0)"}


class SharedHold(Hold):
    """locks.Hold with what names it in ``upload_holds``."""

    def __init__(self, upload_id: str, holder: str, busy: Exception) -> None:
        super().__init__()
        self.upload_id, self.holder, self.busy = upload_id, holder, busy
        # monotonic times: when this process learnt it holds it, and when the last write of
        # its lease that the database confirmed was sent (the lease runs from no earlier).
        self.registered_at = self.renewed_from = 0.0


class SharedLocks:
    """The interface of locks.UploadLocks, plus ``fence`` and ``close``.

    The renewal task starts with the first ``hold`` or ``take_over`` on the event loop that
    serves requests; ``await close()`` (the app's lifespan shutdown) stops it and frees this
    instance's rows at once instead of a lease later."""

    def __init__(self, index: Index, *, lease_s: float = LEASE_S, renew_every_s: float | None = None,
                 poll_s: float = POLL_S, takeover_wait_s: float | None = None) -> None:
        self.index = index
        self.instance = secrets.token_hex(8)
        self.lease_s = lease_s
        self.renew_every_s = renew_every_s if renew_every_s is not None else lease_s / 4
        self.poll_s = poll_s
        self._takeover_wait_s = takeover_wait_s  # None: locks.TAKEOVER_WAIT_S, read when used
        self._now = _NOW[index.dialect]
        self._holds: dict[str, SharedHold] = {}
        self._acquiring: set[str] = set()  # holders whose row may exist before they register
        self._task: asyncio.Task | None = None
        self._renewer: concurrent.futures.ThreadPoolExecutor | None = None
        self._failing_since: float | None = None

    @property
    def takeover_wait_s(self) -> float:
        return locks.TAKEOVER_WAIT_S if self._takeover_wait_s is None else self._takeover_wait_s

    # -- the interface of locks.UploadLocks ----------------------------------------------

    def locked(self, upload_id: str) -> bool:
        """A request holds the upload, in this instance or a live one."""
        if upload_id in self._holds:
            return True
        return self.index.one(f"SELECT 1 AS held FROM upload_holds WHERE upload_id = ? "
                              f"AND renewed_at >= {self._now} - ?",
                              [upload_id, self.lease_s]) is not None

    async def take_over(self, upload_id: str, busy: Exception) -> None:
        """Ask whoever holds the upload to stop and wait until nobody does; `busy` is raised
        when a holder does not let go in time."""
        await self._turn(upload_id, busy, take=False)

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, busy: Exception):
        hold = await self._turn(upload_id, busy, take=True)
        try:
            yield hold
        finally:
            await self._release(hold)

    # -- fencing -------------------------------------------------------------------------

    def fence(self, hold: SharedHold, busy: Exception | None = None) -> None:
        """Inside the transaction that records what `hold` wrote: raise `busy` (default: the
        one given to ``hold``) unless the upload's row is still this hold's, and lock the row
        until that transaction ends, so no takeover lands between this check and the commit.
        SQLite's transaction already holds the whole file's write lock."""
        if not self.index.in_transaction:
            raise RuntimeError("fence() belongs inside the transaction that records the offset")
        lock = " FOR UPDATE" if self.index.dialect == POSTGRESQL else ""
        row = self.index.one(f"SELECT holder FROM upload_holds WHERE upload_id = ?{lock}",
                             [hold.upload_id])
        if row is None or row["holder"] != hold.holder:
            log.warning("upload %s: hold lost to another request, nothing recorded", hold.upload_id)
            hold.ask_to_stop()
            raise busy if busy is not None else hold.busy

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None or self._task.done():
            if self._renewer is None:
                self._renewer = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix=f"qm-holds-{self.instance}")
            self._task = asyncio.get_running_loop().create_task(self._keep(),
                                                                name="upload-holds renewal")

    async def close(self) -> None:
        """Stop renewing; this instance's rows are deleted (its requests are over by now)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for hold in list(self._holds.values()):
            hold.ask_to_stop()
        try:
            await asyncio.to_thread(self.index.execute,
                                    "DELETE FROM upload_holds WHERE instance = ?", [self.instance])
        except Exception as exc:  # the rows expire a lease later anyway
            log.warning("upload holds of this instance not freed (%s); they expire in %.0f s",
                        exc, self.lease_s)
        if self._renewer is not None:
            self._renewer.shutdown(wait=False)
            self._renewer = None

    # -- taking and letting go -----------------------------------------------------------

    async def _turn(self, upload_id: str, busy: Exception, take: bool) -> SharedHold | None:
        """Wait until nobody holds the upload, asking the holder to stop; with `take`, hold it."""
        self._start()
        deadline = time.monotonic() + self.takeover_wait_s
        while True:
            local = self._holds.get(upload_id)
            if local is not None:
                # Held in this process: asked directly, no waiting for the next renewal.
                local.ask_to_stop()
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await local.released.wait()
                except TimeoutError:
                    raise busy from None
                continue
            if take:
                hold = await self._try_take(upload_id, busy)
                if hold is not None:
                    return hold
            live = await asyncio.to_thread(self._ask_to_stop, upload_id)
            if not live and not take:
                return None
            if time.monotonic() >= deadline:
                raise busy
            if live:
                await asyncio.sleep(self.poll_s)

    async def _try_take(self, upload_id: str, busy: Exception) -> SharedHold | None:
        holder = secrets.token_hex(16)
        self._acquiring.add(holder)
        try:
            sent = time.monotonic()
            taken = await asyncio.to_thread(self._insert_or_take, upload_id, holder)
        finally:
            # Cancelled with the row taken: the renewal finds it nobody's here and deletes it.
            self._acquiring.discard(holder)
        if not taken:
            return None
        if upload_id in self._holds:
            # Another request of this process took it too: impossible while the row says
            # one holder, so a bug; let go of ours rather than have two writers.
            await asyncio.to_thread(self._delete, upload_id, holder)
            return None
        hold = SharedHold(upload_id, holder, busy)  # here: Hold() records the requesting task
        hold.registered_at, hold.renewed_from = time.monotonic(), sent
        self._holds[upload_id] = hold
        return hold

    async def _release(self, hold: SharedHold) -> None:
        try:
            await asyncio.to_thread(self._delete, hold.upload_id, hold.holder)
        except Exception as exc:
            # Not renewed from now on (the renewal deletes rows nobody here holds), so another
            # instance can take it a lease later at worst.
            log.warning("upload %s: hold not freed (%s); it expires in %.0f s",
                        hold.upload_id, exc, self.lease_s)
        finally:
            if self._holds.get(hold.upload_id) is hold:
                del self._holds[hold.upload_id]
            hold.released.set()

    # -- the statements (worker threads) ---------------------------------------------------

    def _insert_or_take(self, upload_id: str, holder: str) -> bool:
        """One statement: the row is made ours if there is none or its lease ran out."""
        return self.index.execute(
            f"INSERT INTO upload_holds (upload_id, holder, instance, stop_asked, renewed_at) "
            f"VALUES (?, ?, ?, 0, {self._now}) "
            f"ON CONFLICT (upload_id) DO UPDATE SET holder = excluded.holder, "
            f"instance = excluded.instance, stop_asked = 0, renewed_at = excluded.renewed_at "
            f"WHERE upload_holds.renewed_at < excluded.renewed_at - ?",
            [upload_id, holder, self.instance, self.lease_s]) == 1

    def _ask_to_stop(self, upload_id: str) -> bool:
        """Raise the live holder's stop flag; False when nobody live holds the upload."""
        return bool(self.index.query(
            f"UPDATE upload_holds SET stop_asked = 1 WHERE upload_id = ? "
            f"AND renewed_at >= {self._now} - ? RETURNING holder", [upload_id, self.lease_s]))

    def _delete(self, upload_id: str, holder: str) -> None:
        self.index.execute("DELETE FROM upload_holds WHERE upload_id = ? AND holder = ?",
                           [upload_id, holder])

    def _renew(self) -> list[dict]:
        return self.index.query(f"UPDATE upload_holds SET renewed_at = {self._now} "
                                f"WHERE instance = ? RETURNING upload_id, holder, stop_asked",
                                [self.instance])

    # -- the renewal task ----------------------------------------------------------------

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        renewing: asyncio.Future | None = None
        sent = next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if renewing is None and now >= next_at:
                sent, next_at = now, now + self.renew_every_s
                renewing = loop.run_in_executor(self._renewer, self._renew)
            wake = max(0.01, min(next_at, self._first_stop()) - time.monotonic())
            if renewing is not None:
                done, _ = await asyncio.wait([renewing], timeout=wake)
                if done:
                    future, renewing = renewing, None
                    try:
                        await self._renewed(future.result(), sent)
                    except Exception as exc:
                        self._renewal_failed(exc)
            else:
                await asyncio.sleep(wake)
            self._stop_unrenewed()

    async def _renewed(self, rows: list[dict], sent: float) -> None:
        if self._failing_since is not None:
            log.warning("upload holds renewed again after %.1f s", time.monotonic() - self._failing_since)
            self._failing_since = None
        rows_by_holder = {row["holder"]: row for row in rows}
        mine = {hold.holder for hold in self._holds.values()}
        for hold in list(self._holds.values()):
            row = rows_by_holder.get(hold.holder)
            if row is not None:
                hold.renewed_from = max(hold.renewed_from, sent)
                if row["stop_asked"]:
                    hold.ask_to_stop()  # another instance's request takes over
            elif hold.registered_at < sent and not hold.stop_asked:
                # Our lease ran out and another instance took the upload (or it was freed):
                # whatever this request still writes, fence() will refuse to record.
                log.warning("upload %s: hold taken by another instance", hold.upload_id)
                hold.ask_to_stop()
        for row in rows:
            if row["holder"] not in mine and row["holder"] not in self._acquiring:
                # Its request ended without deleting it (the database failed then, or the
                # request was cancelled while taking it): free it now, or at the next renewal.
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._delete, row["upload_id"], row["holder"])

    def _renewal_failed(self, exc: Exception) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning("upload holds not renewed (%s); their requests stop in %.0f s unless "
                        "the database answers again", exc, self.lease_s - self.renew_every_s)

    def _stop_deadline(self, hold: SharedHold) -> float:
        # One renewal period before the lease can run out anywhere: time to wind down before
        # another instance may take the upload.
        return hold.renewed_from + self.lease_s - self.renew_every_s

    def _first_stop(self) -> float:
        return min((self._stop_deadline(h) for h in self._holds.values() if not h.stop_asked),
                   default=math.inf)

    def _stop_unrenewed(self) -> None:
        """The database has not confirmed a lease for too long: assume it lost (the row may be
        taken any moment) and ask its request to stop."""
        now = time.monotonic()
        for hold in list(self._holds.values()):
            if not hold.stop_asked and now >= self._stop_deadline(hold):
                log.warning("upload %s: hold not renewed for %.1f s, asking its request to stop",
                            hold.upload_id, now - hold.renewed_from)
                hold.ask_to_stop()
