"""The one way chainrule writes files: atomically, leaving nothing behind.

Every file chainrule writes (model files, CSV predictions, diagrams, figures) goes
through a temporary sibling that is flushed, fsynced and renamed into place, so a
reader never sees a half-written file and a failure — an exception, Ctrl-C, a full
disk — leaves any earlier file untouched and no temporary file behind.

A process killed outright (SIGKILL, SIGTERM, a power cut) cannot clean up after
itself, so its temporary file stays. Those files are named
``.<target name>.<random hex>.chainrule-tmp`` and, on POSIX, locked
(``flock``) by the writer for as long as it writes: the next write into the same
folder removes every such file whose lock is free, that is, whose writer is gone.
A file another process is still writing is left alone. (On Windows a file that is
open cannot be removed, which gives the same guarantee.)
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import NotARegularFileError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be unlinked anyway
    fcntl = None  # type: ignore[assignment]

#: The suffix of chainrule's temporary files; the next write into the folder removes
#: those whose writer has gone.
TEMPORARY_SUFFIX = ".chainrule-tmp"


def write_atomically(
    path: str | os.PathLike[str], write_contents: Callable[[IO[bytes]], None]
) -> Path:
    """Create or replace ``path`` with what ``write_contents(handle)`` writes.

    Also removes the temporary files that killed writers left in the same folder
    (see the module docstring).

    Args:
        path: the file to create or replace; its folder must exist.
        write_contents: called once with a binary file handle to write into.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        NotARegularFileError: ``path`` exists and is a device, FIFO or socket.
        OSError: the file cannot be written (permissions, disk full); nothing changed.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {os.fspath(target)!r}: there is no folder {folder}")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {os.fspath(target)!r}: it is a folder")
    _refuse_special_file(target)
    remove_stale_temporaries(folder)
    descriptor, temporary = _create_locked_temporary(target)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write_contents(handle)
            handle.flush()
            os.fsync(handle.fileno())
            if fcntl is not None:
                # Renamed while still open and locked, so no cleanup can take it first.
                os.replace(temporary, target)
        if fcntl is None:  # pragma: no cover - Windows cannot rename an open file
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


def _refuse_special_file(target: Path) -> None:
    """Refuse to replace a device, FIFO or socket (``os.replace`` would, as root, even
    ``/dev/null``)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return  # nothing there yet (or unreadable: os.replace will say)
    if not stat.S_ISREG(mode):
        raise NotARegularFileError(
            f"cannot write {os.fspath(target)!r}: it is {describe_file_type(mode)}, not a "
            "regular file; choose a file name"
        )


def describe_file_type(mode: int) -> str:
    """What kind of file ``mode`` (an ``st_mode``) is, in words, for messages."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _create_locked_temporary(target: Path) -> tuple[int, Path]:
    """A new temporary sibling of ``target``, opened for writing and locked."""
    while True:
        temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
        # O_EXCL: never write through someone else's file; mode 0o666 lets the umask decide.
        descriptor = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
        )
        if fcntl is None:
            return descriptor, temporary
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            # Between creating and locking, another writer's cleanup may have taken the
            # free lock and removed the file; then this descriptor is orphaned: retry.
            if os.stat(temporary).st_ino == os.fstat(descriptor).st_ino:
                return descriptor, temporary
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(descriptor)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        os.close(descriptor)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files in ``folder`` that killed chainrule writers left.

    A temporary file is stale when no process holds its lock (POSIX) or, on
    platforms without ``flock``, when it can be removed (an open file cannot be).

    Args:
        folder: the folder to clean.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIX)):
            continue
        with contextlib.suppress(OSError):
            if not entry.is_file(follow_symlinks=False):
                continue
            if _remove_if_unlocked(Path(entry.path)):
                removed.append(Path(entry.path))
    return removed


def _remove_if_unlocked(path: Path) -> bool:
    if fcntl is None:  # pragma: no cover - Windows
        os.unlink(path)
        return True
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer is alive and still writing
        # Remove it only if the name still refers to the file we locked.
        if os.stat(path).st_ino != os.fstat(descriptor).st_ino:
            return False
        os.unlink(path)
        return True
    finally:
        os.close(descriptor)  # releases the lock


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
