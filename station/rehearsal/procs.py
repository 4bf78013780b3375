"""The OS-specific corner of a rehearsal: its child process (the local collector).

On Linux a child is also told to end when `station serve` dies without cleaning up
(``kill -9``), so no collector outlives a crashed rehearsal; on Windows the children get a
process group of their own instead.
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from qmbase.platform import child_group_options, stop_child


if sys.platform.startswith("linux"):
    import ctypes
    import signal

    # Resolved here, in the parent: the forked child (other threads' locks frozen mid-air)
    # only makes one system call before exec, loading nothing.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _PR_SET_PDEATHSIG = 1

    def _linux_parent_death_signal() -> None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


# Linux sends the parent-death signal when the *thread* that started the child ends, and the
# web server's worker threads end when idle: every child is started from this one thread,
# which lives as long as the process.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehearsal-spawner")


def start(args: list[str], **kw) -> subprocess.Popen:
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    kw.setdefault("stdin", subprocess.DEVNULL)
    if sys.platform.startswith("linux"):
        kw["preexec_fn"] = _linux_parent_death_signal
    else:
        kw.update(child_group_options())
    return _spawner.submit(subprocess.Popen, args, **kw).result()


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask the child to end, then kill it if it will not go; a child that already died is fine."""
    stop_child(proc, timeout)

