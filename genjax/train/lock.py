"""One writer per run directory: a lock file that names its holder; and a waiting lock for shared caches.

The lock is an ``fcntl.flock`` on ``<workdir>/genjax.lock``, which holds the holder's PID, host and start
time. The kernel drops the lock when its process ends, however it ends (a crash or SIGKILL too), so a lock
left by a dead process is stale by construction and the next run takes it. A process may take the lock of
one directory more than once (``train_and_evaluate`` around ``fit``); it is released at the outermost exit.
:func:`waiting_lock` is the same kind of lock on any file, but a second process waits for it instead of
being refused (one process builds a cache entry while the others wait, then read it).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from genjax.core.errors import RunError

LOCK_FILE = "genjax.lock"

_held: dict[Path, tuple[int, int]] = {}  # resolved lock path -> (file descriptor, depth) in this process


def _holder(path: Path) -> str:
    """Who holds ``path``, in words, from what its holder wrote."""
    try:
        info = json.loads(path.read_text())
        return f"PID {info['pid']} on {info['host']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


@contextlib.contextmanager
def run_lock(workdir: str | Path) -> Iterator[Path]:
    """Hold ``workdir``'s lock while the block runs (``workdir`` must exist); a directory held by another
    process raises :class:`genjax.errors.RunError` naming the holder. Yields the lock file's path."""
    path = (Path(workdir) / LOCK_FILE).resolve()
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield path
        finally:
            _held[path] = (fd, _held[path][1] - 1)
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunError(f"{Path(workdir)} is in use by another genjax run ({_holder(path)}); wait for it to end or "
                       "stop it, or choose another --workdir") from None
    try:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        _held[path] = (fd, 1)
        yield path
    finally:
        _held.pop(path, None)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody holds it now
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def waiting_lock(path: str | Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while the block runs; while another process
    holds it, print one line to stderr (``waiting`` says for what) and wait. If ``path`` cannot be created
    (an unwritable cache), the block runs without the lock."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        fd = None
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"genjax: waiting for another process that {waiting} ({path})", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
