"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never
half of one.

Each writer writes to a temporary name in the same folder (`.tmp-<pid>-<name>`, which
keeps the suffix Keras insists on, e.g. `.weights.h5`), flushes it to disk and renames it
over the target; `os.replace` is atomic on POSIX and Windows. A kill mid-write leaves only
a temporary file, which `remove_stale_temporaries` clears on the next start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def temporary_path(path) -> Path:
    """The temporary name `path` is written under before the rename."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # folders cannot be opened on some platforms; the rename still holds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; on success it replaces `path` atomically.

    On an exception the temporary file is removed and `path` is left as it was.

    Args:
        path: the file to (re)write.

    Example:
        >>> with atomic_path("run/model.keras") as tmp:
        ...     model.save(tmp)
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        if tmp.is_file():
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes(path, data: bytes, *, before_rename=None) -> None:
    """Writes `data` to `path` atomically.

    Args:
        path: the target file.
        data: its new contents.
        before_rename: optional `callback(file, data)` called after the first half of
            `data` is written and flushed (the test-only fault switch uses it).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if before_rename is not None:
            f.flush()
            os.fsync(f.fileno())
            before_rename(tmp, data)
        f.write(data[half:])


def write_text(path, text: str) -> None:
    """Writes UTF-8 `text` to `path` atomically.

    Example:
        >>> write_text("run/results.json", json.dumps(results, indent=2))
    """
    write_bytes(path, text.encode("utf-8"))


def save_model(model, path) -> None:
    """`model.save(path)` through a temporary file: a kill never leaves half a `.keras`."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def save_weights(model, path) -> None:
    """`model.save_weights(path)` through a temporary file."""
    with atomic_path(path) as tmp:
        model.save_weights(tmp)


def remove_stale_temporaries(folder) -> list[Path]:
    """Removes what killed writers left in `folder` (`.tmp-*` files); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(folder.glob(f"{TEMP_PREFIX}*"))
    for path in stale:
        if path.is_file():
            path.unlink(missing_ok=True)
    return stale
