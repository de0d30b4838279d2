"""Replacing a file so that a reader, a kill or a power loss never finds half of it.

The new contents go to a uniquely named temporary file beside the old one, are flushed to disk, and are renamed
over it; then the folder is flushed, so the rename cannot reach the disk before the data (an empty file after a
power loss). Until the rename the old file stays whole. Two writers of one path at once do not share a temporary
file. Checkpoints and items.json are written this way.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def replace_file(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call write(f) on a temporary file beside path, then put it in path's place. Whatever write or the file system
    raises is raised, with the temporary file removed and path as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = temp_file_beside(path)
    tmp: Path | None = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file 600: the old file's mode, else what the umask gives a new file (a node running
            # as another user could not read items.json or a model file)
            os.fchmod(f.fileno(), _mode_for(path))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    _fsync_folder(path.parent)


def temp_file_beside(path: Path) -> tuple[int, str]:
    """(open descriptor, name) of a new, uniquely named PATH.XXXX.tmp in path's folder: never a user's own file."""
    return tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask; from /proc where it can be read (os.umask can only be read by setting it, which
    another thread's new file would see)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk; a file system that cannot (some network mounts) is left be."""
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
