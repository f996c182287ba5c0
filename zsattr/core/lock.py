"""A build lock per cache key, across processes on one machine and, where the filesystem allows,
across machines sharing the cache.

The lock is a file created with `O_CREAT | O_EXCL` (atomic on local filesystems and NFS v3+),
holding its owner's host, pid, start time and a random token. Where `fcntl.flock` works the
owner also holds a flock on it, which the kernel drops when the owner dies, so a dead owner is
recognised even when its pid has been reused. A lock whose owner is gone (same host: the pid is
not running, or nobody holds the flock) is taken over with a warning. A lock held from another
host is never broken automatically: the waiter logs who holds it and which file to delete if
that process is gone.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import provenance

try:
    import fcntl
except ImportError:  # Windows: the O_EXCL file alone
    fcntl = None

log = logging.getLogger(__name__)

BREAK_GUARD_SECONDS = 30.0  # a `.break` guard older than this was left by a process that died breaking a lock
EMPTY_GRACE_SECONDS = 10.0  # an owner writes its record microseconds after creating the file


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    host: str
    pid: int
    since: str
    token: str
    flock: bool

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"


def _read_record(path: Path) -> tuple[Holder | None, os.stat_result] | None:
    """(holder or None when the record is not written yet / unreadable, stat); None if no file."""
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            raw = fh.read(4096)
    except FileNotFoundError:
        return None
    try:
        rec = json.loads(raw)
        holder = Holder(str(rec["host"]), int(rec["pid"]), str(rec["since"]), str(rec["token"]), bool(rec["flock"]))
    except (ValueError, KeyError, TypeError):
        holder = None
    return holder, stat


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _flock_free(path: Path) -> bool:
    """True when nobody holds the owner's (exclusive) flock on the file at `path`; a shared one,
    taken and dropped at once, tells (shared: a read-only handle may take it, on NFS too)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


class FileLock:
    """`with FileLock(path, "building X"):` waits for the lock, then holds it for the block."""

    def __init__(self, path: str | os.PathLike, what: str = "", poll_seconds: float = 0.25,
                 log_every_seconds: float = 300.0):
        self.path = Path(path)
        self.what = what or self.path.stem
        self.poll_seconds = poll_seconds
        self.log_every_seconds = log_every_seconds
        self._fd: int | None = None
        self._token = ""

    # -- state ------------------------------------------------------------------------------------

    def holder(self) -> Holder | None:
        found = _read_record(self.path)
        return found[0] if found else None

    def is_stale(self) -> bool:
        """True when the lock file exists and its owner is certainly gone."""
        found = _read_record(self.path)
        return found is not None and self._stale(*found)

    def is_held(self) -> bool:
        """True when a process that may still be running holds the lock (this one included)."""
        return self.path.exists() and not self.is_stale()

    def _stale(self, holder: Holder | None, stat: os.stat_result) -> bool:
        if holder is None:  # created but never written: its owner died in between
            return time.time() - stat.st_mtime > EMPTY_GRACE_SECONDS
        if holder.host != socket.gethostname():
            return False  # its pid means nothing here
        if not _pid_running(holder.pid):
            return True
        # The pid runs, but it may be a new process under a reused pid: the owner's flock tells.
        return holder.flock and fcntl is not None and _flock_free(self.path)

    # -- acquire / release ------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; never waits."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        for _ in range(2):  # a second try after breaking a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
            except FileExistsError:
                found = _read_record(self.path)
                if found is None:
                    continue  # released meanwhile
                if not (self._stale(*found) and self._break(*found)):
                    return False
                continue
            self._own(fd)
            return True
        return False

    def _own(self, fd: int) -> None:
        flocked = False
        if fcntl is not None:
            try:  # before the record is written: a record that claims a flock always has one
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except OSError:  # e.g. ENOLCK on a filesystem without locks: the file alone
                pass
        token = uuid.uuid4().hex
        record = {"host": socket.gethostname(), "pid": os.getpid(), "since": provenance.now_iso(),
                  "token": token, "flock": flocked}
        try:
            os.write(fd, json.dumps(record).encode())
            os.fsync(fd)
        except BaseException:
            self.path.unlink(missing_ok=True)
            os.close(fd)
            raise
        self._fd, self._token = fd, token

    def _break(self, holder: Holder | None, stat: os.stat_result) -> bool:
        """Remove the stale lock file we looked at, unless it has changed since. A short-lived
        `.break` guard keeps two breakers from removing each other's fresh locks."""
        guard = self.path.with_name(self.path.name + ".break")
        try:
            gfd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > BREAK_GUARD_SECONDS:
                    guard.unlink()
            except FileNotFoundError:
                pass
            return False
        try:
            now = _read_record(self.path)
            if now is None:
                return True  # gone already
            same = now[1].st_ino == stat.st_ino and (now[0].token if now[0] else None) == (
                holder.token if holder else None)
            if not same:
                return False
            who = holder.describe() if holder else "a process that never wrote its record"
            log.warning("lock %s: its owner (%s) is gone; taking the lock over", self.path, who)
            self.path.unlink()
            return True
        finally:
            os.close(gfd)
            guard.unlink(missing_ok=True)

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (logging whom it waits for); TimeoutError after `timeout` seconds."""
        started = time.monotonic()
        last_log, told = None, None
        while not self.try_acquire():
            now = time.monotonic()
            holder = self._describe_holder()
            if timeout is not None and now - started >= timeout:
                raise TimeoutError(f"{self.what}: the lock {self.path} is still held by "
                                   f"{holder} after {timeout:g} s")
            # a new holder (or one whose record is now written) is said at once; the same one
            # again every log_every_seconds
            if holder != told or now - last_log >= self.log_every_seconds:
                (log.warning if holder != told else log.info)(
                    "%s: waiting for %s, which holds %s", self.what, holder, self.path)
                last_log, told = now, holder
            time.sleep(self.poll_seconds)
        if last_log is not None:
            log.info("%s: got the lock after %.1f s", self.what, time.monotonic() - started)

    def _describe_holder(self) -> str:
        holder = self.holder()
        if holder is None:
            return "a process that is still writing its record"
        if holder.host != socket.gethostname():
            return f"{holder.describe()} (another machine: if that process is gone, delete the lock file)"
        return holder.describe()

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            found = _read_record(self.path)
            if found and found[0] and found[0].token == self._token:
                self.path.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        finally:
            os.close(self._fd)  # drops the flock
            self._fd = None
            self._token = ""

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
