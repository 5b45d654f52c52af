"""The one way chainrule writes files: atomically.

Every file chainrule writes (model files, CSV predictions, diagrams, figures) goes
through a temporary sibling that is flushed, fsynced and renamed into place, so a
reader never sees a half-written file and a failure — an exception, Ctrl-C, a full
disk — leaves any earlier file untouched and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(
    path: str | os.PathLike[str], write_contents: Callable[[IO[bytes]], None]
) -> Path:
    """Create or replace ``path`` with what ``write_contents(handle)`` writes.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        OSError: the file cannot be written (permissions, disk full); nothing changed.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {os.fspath(target)!r}: there is no folder {folder}")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {os.fspath(target)!r}: it is a folder")
    temporary = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
    # O_EXCL: never write through someone else's file; mode 0o666 lets the umask decide.
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write_contents(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        # Also on KeyboardInterrupt: the temporary file must not outlive the attempt.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)
    return target


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Create or replace ``path`` with ``data`` (see :func:`write_atomically`)."""

    def write_contents(handle: IO[bytes]) -> None:
        handle.write(data)

    return write_atomically(path, write_contents)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
