"""The one place for calls that differ between POSIX and Windows.

Test rooms run Windows 10 as often as Linux. Everything else in the project calls these
helpers instead of reaching for ``os.chmod`` modes, directory fsyncs or signals itself.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

WINDOWS = sys.platform == "win32"


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by its owner only.

    The data dir holds children's names and voices. On POSIX that is mode 0700. On
    Windows the per-user profile (``%LOCALAPPDATA%``, where platformdirs puts it) is
    already closed to other users by its ACL, and chmod cannot express more.
    """
    path.mkdir(parents=True, exist_ok=True)
    if not WINDOWS:
        os.chmod(path, 0o700)
    return path


def is_private(path: Path) -> bool:
    if WINDOWS:
        return True
    return (path.stat().st_mode & 0o077) == 0


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` survive a power cut.

    POSIX needs the directory itself fsynced; Windows cannot open a directory for that
    and NTFS journals the rename with the file's own flush.
    """
    if WINDOWS:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """Move a fully written and fsynced ``tmp`` onto ``final`` atomically."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def free_bytes(path: Path) -> int:
    """Free space on the disk holding ``path`` (works on both; walks up to an existing dir)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def user_name() -> str:
    """Who is at the keyboard, for the audit log ("who closed the sitting")."""
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no login name (a service account, a container): still record something
        return os.environ.get("USERNAME") or os.environ.get("USER") or "unknown"


def open_private(path: Path, mode: str = "wb"):
    """Create (or truncate) ``path`` readable by its owner only and open it for writing.

    The mode is set at creation, so there is no moment at which another user could open it.
    """
    if mode not in ("wb", "w"):
        raise ValueError("open_private writes: mode 'wb' or 'w'")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    make_private_file(path)  # an existing file keeps its old mode through O_TRUNC
    if mode == "w":
        return os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    return os.fdopen(fd, "wb")


def make_private_file(path: Path) -> Path:
    """An existing file: readable by its owner only (0600 on POSIX)."""
    if not WINDOWS:
        os.chmod(path, 0o600)
    return path


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (children's results, exports, stored uploads)."""
    with open_private(path, "wb") as f:
        f.write(data)


def write_private_text(path: Path, text: str) -> None:
    """Write a file only its owner can read (config with the upload token, reports)."""
    with open_private(path, "w") as f:
        f.write(text)
