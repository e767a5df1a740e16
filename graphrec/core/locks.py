"""One holder at a time, per var dir: an exclusive ``flock`` on ``<var_dir>/locks/<name>.lock``.

The kernel releases it when the holding process ends, however it ends (no stale lock after a
crash). The holder writes its pid and start time into the file, so a refused second start can
say who holds it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from graphrec.core.errors import LockHeld


@contextlib.contextmanager
def exclusive(var_dir: Path, name: str, busy: Callable[[str], str]) -> Iterator[None]:
    """Hold ``<var_dir>/locks/<name>.lock`` for the block; held elsewhere: :class:`LockHeld` with
    ``busy(holder)`` as its message (``holder``: "pid N since T", or "another process")."""
    path = var_dir / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise LockHeld(busy(holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


__all__ = ["exclusive"]
