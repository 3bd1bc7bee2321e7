"""TensorFlow Serving's layout: a base directory of numbered versions.

`BASE/1/`, `BASE/2/`, ... each hold one SavedModel; a server serves the highest number
and picks up a new one without restart. A version is written under a temporary name
that is not a number (`BASE/.tmp-3-<pid>-<random>/`), so no server ever sees half of
it, and renamed to its number once complete.

Example:
    >>> write_next_version("exports/shakes", lambda d: export_charlm(model, tok, d))
    PosixPath('exports/shakes/1')
    >>> numeric_versions("exports/shakes")
    [1]
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

TMP_PREFIX = ".tmp-"


def numeric_versions(base_dir) -> list[int]:
    """The version numbers under `base_dir` (sub-directories named by a non-negative
    decimal integer, as TensorFlow Serving reads them), ascending; [] when there is no
    such directory or no `base_dir`."""
    base_dir = Path(base_dir)
    if not base_dir.is_dir():
        return []
    versions = []
    for child in base_dir.iterdir():
        name = child.name
        if name.isascii() and name.isdigit() and child.is_dir():
            versions.append(int(name))
    return sorted(versions)


def is_savedmodel(path) -> bool:
    """Whether `path` is itself a SavedModel directory (it holds `saved_model.pb`)."""
    return (Path(path) / "saved_model.pb").is_file()


def write_next_version(base_dir, write, attempts: int = 10) -> Path:
    """Writes the next version under `base_dir` with `write(temporary_dir)` and renames
    it to its number once `write` returns.

    Args:
        base_dir: the base directory (created if missing).
        write: a function that writes a complete SavedModel into the directory it is
            given (which does not exist yet).
        attempts: how often to take the next free number when another writer took the
            one chosen.

    Returns:
        The version directory (`base_dir/<n>`).

    Raises:
        FileExistsError: `base_dir` is itself a SavedModel (a flat export), naming it;
            or no number could be taken in `attempts` tries.
        Exception: whatever `write` raised; the temporary directory is removed.
    """
    base_dir = Path(base_dir)
    if is_savedmodel(base_dir):
        raise FileExistsError(
            f"{base_dir} is itself a SavedModel (a flat export); give a base directory, "
            "under which versions are written as 1/, 2/, ..."
        )
    base_dir.mkdir(parents=True, exist_ok=True)
    version = max(numeric_versions(base_dir), default=0) + 1
    tmp = base_dir / f"{TMP_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        for _ in range(attempts):
            version = max(max(numeric_versions(base_dir), default=0) + 1, version)
            final = base_dir / str(version)
            version += 1  # the next candidate, should this one be taken
            if final.exists():
                continue
            try:
                # Versions are only ever created by this rename, complete: a directory
                # that another writer renamed here first is not empty, so this fails.
                os.rename(tmp, final)
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue
            return final
        raise FileExistsError(f"Could not take a new version number under {base_dir}.")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
