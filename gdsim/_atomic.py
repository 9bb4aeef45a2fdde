"""Atomic file writing: a reader (or a crash) sees the old file or the new one, never half.

Why a private top-level module: scenarios are saved atomically too, and ``gdsim.scenario`` sits
below ``gdsim.export`` in the import layers (pyproject.toml), so the helper cannot live only in
``gdsim.export``. Its public name is :mod:`gdsim.export.atomic`, which re-exports this.

How: write to a temporary file in the *same folder* (so the final rename never crosses a file
system), flush and fsync it, then ``os.replace`` it over the target, which POSIX and Windows both
make atomic. On any error the temporary file is removed and the target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write"]


def _umask() -> int:
    """The process umask, read without changing it where the OS lets us (threads are running)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


def _mode_for(path: str) -> int:
    """Permission bits the new file should get: the old file's, else what open() would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing; the file appears, complete, only when the block ends cleanly.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (binary). If the block raises, the target keeps its
    old content (or stays absent) and no temporary file is left behind. Errors opening the
    folder (missing, not writable) are the usual ``OSError`` subclasses, raised before the
    block runs.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', not {mode!r}")
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    if os.path.isdir(target):
        raise IsADirectoryError(21, "Is a directory", target)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(target))
        binary = mode == "wb"
        handle = os.fdopen(
            fd,
            mode,
            encoding=None if binary else encoding,
            newline=None if binary else newline,
        )
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_folder(folder)


def atomic_write(
    path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8"
) -> None:
    """Write ``data`` (text or bytes) to ``path`` atomically; see :func:`atomic_open`."""
    if isinstance(data, bytes):
        with atomic_open(path, "wb") as handle:
            handle.write(data)
    else:
        with atomic_open(path, "w", encoding=encoding, newline="") as handle:
            handle.write(data)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open folders, and needs not."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
