"""The one place for calls that differ between POSIX and Windows.

Test rooms run Windows 10 as often as Linux. Everything else in the project calls these
helpers instead of reaching for ``os.chmod`` modes, directory fsyncs, file locks, signals,
serial port names or the console's encoding itself. Each helper has its Windows branch
here; the Windows ones are exercised under Wine by ``scripts/test-windows``.
"""
from __future__ import annotations

import codecs
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

WINDOWS = sys.platform == "win32"

# --- privacy: the data dir holds children's names and voices -----------------------------
#
# POSIX: modes 0700/0600. Windows ignores chmod beyond the read-only bit (modes read back
# 0o777), so there the folder gets a protected ACL: full control for the user and SYSTEM,
# nothing inherited from the parent (a folder unzipped on D:\ would otherwise inherit
# "Users: read"). Plain ctypes over advapi32 rather than `icacls` (a process per folder, its
# messages in the system's language) or pywin32 (a 10 MB dependency for four calls).

_SYSTEM = "SY"
_ADMINS = "BA"  # may always take ownership anyway: allowed, never granted here


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by its owner only."""
    path = Path(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    if not WINDOWS:
        os.chmod(path, 0o700)
    elif created or not is_private(path):
        _win_acl.set_owner_only(path, inherit=True)
    return path


def is_private(path: Path) -> bool:
    """Whether only the owner (and on Windows SYSTEM and Administrators) may open ``path``."""
    if WINDOWS:
        allowed = {_win_acl.user_sid(), _SYSTEM, _ADMINS, "S-1-5-18", "S-1-5-32-544"}
        trustees = _win_acl.allowed_trustees(path)
        return trustees is not None and trustees <= allowed
    return (Path(path).stat().st_mode & 0o077) == 0


# --- durability ----------------------------------------------------------------------------

def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` survive a power cut.

    POSIX needs the directory itself fsynced. Windows cannot open a directory for that
    (os.open refuses it) and NTFS journals the rename as metadata with the file's own flush.
    """
    if WINDOWS:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """Move a fully written and fsynced ``tmp`` onto ``final`` atomically (both systems)."""
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


def free_bytes(path: Path) -> int:
    """Free space on the disk holding ``path`` (both: GetDiskFreeSpaceEx on Windows);
    walks up to a folder that exists."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


# --- file locks: one writer per take --------------------------------------------------------

def try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False when another process holds it.

    POSIX: flock. Windows: msvcrt.locking on the first byte (a mandatory lock, released by
    Windows when the process dies, as flock is)."""
    if WINDOWS:
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def unlock(fd: int) -> None:
    if WINDOWS:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def held(path: Path, wait_s: float = 120.0):
    """Hold an exclusive lock on ``path`` (created private if missing), waiting for another
    holder (a thread or a process) up to ``wait_s``; TimeoutError after that."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while not try_lock(fd):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} stayed locked for {wait_s:.0f} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            unlock(fd)
    finally:
        os.close(fd)


# --- child processes ------------------------------------------------------------------------

def child_group_options() -> dict:
    """Popen options for a child the station stops itself (`stop_child`). Windows: a process
    group of its own, which CTRL_BREAK_EVENT needs and which keeps a Ctrl-C in the station's
    console window from reaching it first. POSIX: nothing (Linux children also get a
    parent-death signal, see station.rehearsal.procs)."""
    if WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {}


def stop_child(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a child to end, then kill it if it will not go; a child already gone is fine.

    POSIX: SIGTERM, then SIGKILL. Windows has no SIGTERM (Popen.terminate is TerminateProcess,
    a kill): a child in its own group is sent CTRL_BREAK_EVENT first, which Python servers
    (uvicorn) take as a request to shut down; without a shared console that fails and the
    kill follows."""
    if proc.poll() is not None:
        return
    if WINDOWS:
        try:
            os.kill(proc.pid, __import__("signal").CTRL_BREAK_EVENT)
        except (OSError, SystemError):  # no console shared; CPython 3.11 may say SystemError
            proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- serial port names -----------------------------------------------------------------------

_COM = re.compile(r"(?:\\\\\.\\)?COM([1-9][0-9]{0,2}):?", re.IGNORECASE)


def port_name(name: str) -> str:
    r"""The port as people and station.toml write it: ``com3`` → ``COM3``, ``\\.\COM10`` → ``COM10``.

    Windows numbers COM ports 1 to 256; from COM10 on the Win32 API needs ``\\.\COM10``
    (pyserial adds that itself). POSIX paths (/dev/ttyUSB0) and pyserial URLs pass unchanged.
    """
    stripped = name.strip()
    m = _COM.fullmatch(stripped)
    if m and 1 <= int(m[1]) <= 256:
        return f"COM{int(m[1])}"
    return name


def is_com_port(name: str) -> bool:
    m = _COM.fullmatch(name.strip())
    return bool(m) and 1 <= int(m[1]) <= 256


def com_ports_present() -> set[str] | None:
    """COM ports Windows knows now (USB adapters, Bluetooth, virtual pairs), or None off Windows.

    Each name COM1…COM256 is asked of QueryDosDevice: SetupAPI (pyserial's comports) misses
    ports without a device node, such as virtual pairs and Wine's mapped ports, and Wine's
    listing of every DOS device leaves out the ports it maps lazily. 256 calls take ~1 ms."""
    if not WINDOWS:
        return None
    import ctypes

    query = ctypes.windll.kernel32.QueryDosDeviceW
    buf = ctypes.create_unicode_buffer(1024)
    return {f"COM{n}" for n in range(1, 257) if query(f"COM{n}", buf, len(buf))}


# --- the console -----------------------------------------------------------------------------

# Code pages whose superset is GB18030: the bytes for every GBK character stay the same, and
# the characters GBK lacks (䶮, the rarer ones of children's names) can be written at all.
_GBK_FAMILY = {"gbk", "gb2312", "cp936", "ms936"}


def configure_console() -> None:
    """Make printing never crash on a child's name, whatever the console's code page.

    Windows 10 consoles in China use code page 936 (GBK); output piped or redirected there
    is encoded with it, and a name only GB18030 can encode raised UnicodeEncodeError. GBK
    streams become GB18030 (identical for every GBK character); other non-Unicode code pages
    (1252 on an English Windows) write what they cannot encode as \\uXXXX escapes, which
    also keeps JSON valid. A real console window (WriteConsoleW) and UTF-8 pass unchanged.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            continue
        if name in _GBK_FAMILY:
            stream.reconfigure(encoding="gb18030")
        elif not name.startswith("utf") and name != "gb18030":
            stream.reconfigure(errors="backslashreplace")


# --- the clock -------------------------------------------------------------------------------

def clock_fix_hint() -> tuple[str, str]:
    """Where to set the computer's clock from the network on this system (Chinese, English)."""
    if WINDOWS:
        return "Windows：设置→时间和语言→立即同步", "Windows: Settings > Time & language > Sync now"
    return "Linux：sudo timedatectl set-ntp true", "Linux: sudo timedatectl set-ntp true"


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
    """An existing file: readable by its owner only (0600 on POSIX, an owner-only ACL on Windows)."""
    if WINDOWS:
        _win_acl.set_owner_only(Path(path), inherit=False)
    else:
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


class _WindowsAcl:
    """Owner-only ACLs through advapi32, as Security Descriptor strings (SDDL)."""

    _sid: str | None = None

    def _api(self):
        import ctypes
        from ctypes import wintypes

        adv = ctypes.WinDLL("advapi32", use_last_error=True)
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        return ctypes, wintypes, adv, k32

    def user_sid(self) -> str:
        """The current user's SID, S-1-5-21-…, read from the process token."""
        if self._sid is None:
            ctypes, wintypes, adv, k32 = self._api()
            token = wintypes.HANDLE()
            k32.GetCurrentProcess.restype = wintypes.HANDLE
            adv.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE)]
            if not adv.OpenProcessToken(k32.GetCurrentProcess(), 0x0008, ctypes.byref(token)):  # TOKEN_QUERY
                raise ctypes.WinError(ctypes.get_last_error())
            try:
                size = wintypes.DWORD()
                adv.GetTokenInformation(token, 1, None, 0, ctypes.byref(size))  # TokenUser
                buf = ctypes.create_string_buffer(size.value)
                if not adv.GetTokenInformation(token, 1, buf, size, ctypes.byref(size)):
                    raise ctypes.WinError(ctypes.get_last_error())
                sid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
                text = wintypes.LPWSTR()
                if not adv.ConvertSidToStringSidW(ctypes.c_void_p(sid), ctypes.byref(text)):
                    raise ctypes.WinError(ctypes.get_last_error())
                _WindowsAcl._sid = text.value
                k32.LocalFree(text)
            finally:
                k32.CloseHandle(token)
        return self._sid

    def set_owner_only(self, path: Path, inherit: bool) -> None:
        flags = "OICI" if inherit else ""  # folders: passed on to what is created inside
        self.set_dacl(path, f"D:P(A;{flags};FA;;;{self.user_sid()})(A;{flags};FA;;;{_SYSTEM})")

    def set_dacl(self, path: Path, sddl: str) -> None:
        """Replace the DACL of ``path``; "D:P…" also stops inheriting from the parent."""
        ctypes, wintypes, adv, k32 = self._api()
        sd = ctypes.c_void_p()
        if not adv.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, 1, ctypes.byref(sd), None):
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            present, defaulted = wintypes.BOOL(), wintypes.BOOL()
            dacl = ctypes.c_void_p()
            adv.GetSecurityDescriptorDacl(sd, ctypes.byref(present), ctypes.byref(dacl),
                                          ctypes.byref(defaulted))
            # DACL_SECURITY_INFORMATION, and PROTECTED_DACL_SECURITY_INFORMATION for "D:P".
            info = 0x00000004 | (0x80000000 if sddl.startswith("D:P") else 0x20000000)
            adv.SetNamedSecurityInfoW.argtypes = [wintypes.LPWSTR, ctypes.c_int, wintypes.DWORD,
                                                  ctypes.c_void_p, ctypes.c_void_p,
                                                  ctypes.c_void_p, ctypes.c_void_p]
            err = adv.SetNamedSecurityInfoW(str(path), 1, info, None, None, dacl, None)  # SE_FILE_OBJECT
            if err:
                raise OSError(0, ctypes.FormatError(err), str(path), err)
        finally:
            k32.LocalFree(sd)

    def allowed_trustees(self, path: Path) -> set[str] | None:
        """Who the DACL of ``path`` allows anything; None for no DACL (everyone may)."""
        ctypes, wintypes, adv, k32 = self._api()
        sd, dacl = ctypes.c_void_p(), ctypes.c_void_p()
        adv.GetNamedSecurityInfoW.argtypes = [wintypes.LPWSTR, ctypes.c_int, wintypes.DWORD,
                                              ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                              ctypes.c_void_p, ctypes.c_void_p]
        err = adv.GetNamedSecurityInfoW(str(path), 1, 0x4, None, None, ctypes.byref(dacl), None,
                                        ctypes.byref(sd))
        if err:
            raise OSError(0, ctypes.FormatError(err), str(path), err)
        try:
            if not dacl.value:
                return None
            text = wintypes.LPWSTR()
            if not adv.ConvertSecurityDescriptorToStringSecurityDescriptorW(
                    sd, 1, 0x4, ctypes.byref(text), None):
                raise ctypes.WinError(ctypes.get_last_error())
            sddl = text.value
            k32.LocalFree(text)
        finally:
            k32.LocalFree(sd)
        # ACE strings: (type;flags;rights;object;inherited object;trustee); "A" allows.
        return {ace[5] for ace in re.findall(r"\(([^;()]*);([^;()]*);([^;()]*);([^;()]*);([^;()]*);([^;()]*)\)", sddl)
                if ace[0] == "A"}


_win_acl = _WindowsAcl()
