"""`CheckpointStore`: training checkpoints on disk, written atomically, checked on load.

A checkpoint is two files in the run's `backup/` folder:

    ckpt-000000120.npz    every variable that decides the rest of the run, in order
    ckpt-000000120.json   the run's position and records, and the sha256 of the .npz

The `.npz` is written first, the `.json` last (both through a temporary name and a
rename), so a checkpoint exists only once it is complete; a kill mid-write leaves a
temporary file, which the next start removes. On load, the newest checkpoint whose
`.json` parses and whose `.npz` has the recorded size and sha256 (and the expected
shapes) is used; every newer one that fails is reported by name with what is wrong. The
newest `keep` checkpoints are kept, so a damaged newest one falls back to the previous.

A run started before these checkpoints existed holds Keras's per-epoch backup
(`latest.weights.h5`, `training_metadata.json`) instead; `legacy_backup` finds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from textrnn.training import atomic
from textrnn.training.faults import FaultSwitch

FORMAT = 1
_NAME = re.compile(r"^ckpt-(\d+)\.json$")
LEGACY_WEIGHTS = "latest.weights.h5"
LEGACY_METADATA = "training_metadata.json"


class CheckpointError(RuntimeError):
    """No usable checkpoint: every one found is corrupt or does not fit the model."""


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: its `.json` path, its state dict and its arrays."""

    path: Path
    state: dict
    arrays: list


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CheckpointStore:
    """Writes and finds the checkpoints of one run.

    Args:
        folder: the checkpoint folder (created when the first checkpoint is written).
        keep: how many complete checkpoints to keep (the newest ones), at least 1.
        faults: the process's `FaultSwitch` (test-only fault injection); None = none.

    Example:
        >>> store = CheckpointStore(run_dir / "backup", keep=2)
        >>> store.save(120, {"epoch": 1, "batch": 20}, [v.numpy() for v in variables])
        >>> store.latest([(v.shape, v.dtype) for v in variables]).state["epoch"]
        1
    """

    def __init__(self, folder, keep: int = 2, faults: FaultSwitch | None = None):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"Expected a positive integer for `keep`. Received: keep={keep!r}")
        self.folder = Path(folder)
        self.keep = keep
        self.faults = faults

    def _json_path(self, step: int) -> Path:
        return self.folder / f"ckpt-{step:09d}.json"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """`(step, .json path)` of every checkpoint in the folder, newest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m[1]), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found, reverse=True)

    def save(self, step: int, state: dict, arrays) -> Path:
        """Writes a checkpoint for `step` (replacing one of the same step); returns its
        `.json` path. Older checkpoints beyond `keep` are removed afterwards."""
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **{f"v{i:05d}": np.asarray(a) for i, a in enumerate(arrays)})
        data = buffer.getvalue()
        json_path = self._json_path(step)
        arrays_path = json_path.with_suffix(".npz")
        hook = self.faults.checkpoint_hook() if self.faults is not None else None
        atomic.write_bytes(arrays_path, data, before_rename=hook)
        record = {
            "format": FORMAT,
            "step": step,
            "arrays_file": arrays_path.name,
            "arrays_bytes": len(data),
            "arrays_sha256": _sha256(data),
            "arrays_count": len(arrays),
            "state": state,
        }
        atomic.write_text(json_path, json.dumps(record, indent=1))
        self._prune()
        return json_path

    def _prune(self) -> None:
        found = self.checkpoints()
        for _, json_path in found[self.keep :]:
            json_path.unlink(missing_ok=True)
            json_path.with_suffix(".npz").unlink(missing_ok=True)
        kept = {p.with_suffix(".npz").name for _, p in found[: self.keep]}
        for npz in self.folder.glob("ckpt-*.npz"):  # arrays whose .json never got written
            if npz.name not in kept:
                npz.unlink(missing_ok=True)

    def read(self, json_path: Path, expected=None) -> Checkpoint:
        """Reads and checks one checkpoint.

        Args:
            json_path: the checkpoint's `.json` file.
            expected: optional `[(shape, dtype), ...]` the arrays must have.

        Raises:
            CheckpointError: the checkpoint is truncated, corrupt or does not fit,
                naming the file and what is wrong.
        """
        try:
            record = json.loads(json_path.read_text(encoding="utf-8"))
            arrays_path = json_path.with_name(record["arrays_file"])
            size, digest = record["arrays_bytes"], record["arrays_sha256"]
            count, state = record["arrays_count"], record["state"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{json_path} is truncated or corrupt ({e!r})") from None
        if record.get("format") != FORMAT:
            raise CheckpointError(f"{json_path} has format {record.get('format')!r}, not {FORMAT}")
        if not arrays_path.is_file():
            raise CheckpointError(f"{arrays_path} is missing (named by {json_path.name})")
        data = arrays_path.read_bytes()
        if len(data) != size:
            raise CheckpointError(
                f"{arrays_path} is truncated or corrupt: {len(data):,} bytes, its record "
                f"says {size:,}"
            )
        if _sha256(data) != digest:
            raise CheckpointError(
                f"{arrays_path} is corrupt: its sha256 is not the one recorded in {json_path.name}"
            )
        try:
            with np.load(io.BytesIO(data)) as npz:
                arrays = [npz[f"v{i:05d}"] for i in range(count)]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{arrays_path} cannot be read ({e!r})") from None
        if expected is not None:
            wanted = [(tuple(shape), np.dtype(dtype)) for shape, dtype in expected]
            got = [(a.shape, a.dtype) for a in arrays]
            if got != wanted:
                bad = next(
                    (i for i, (a, b) in enumerate(zip(got, wanted)) if a != b),
                    min(len(got), len(wanted)),
                )
                raise CheckpointError(
                    f"{arrays_path} does not fit this model: {len(got)} arrays for "
                    f"{len(wanted)} variables, first difference at #{bad}"
                )
        return Checkpoint(json_path, state, arrays)

    def latest(self, expected=None, log=print) -> Checkpoint | None:
        """The newest usable checkpoint, or None when there is none at all.

        Every newer checkpoint that fails its checks is reported through `log`, naming
        the file and the fault, before the previous one is tried; once one is usable, the
        failed ones are renamed `*.corrupt` (kept, never taken as newest again).

        Raises:
            CheckpointError: checkpoints exist but none is usable (each one named).
        """
        atomic.remove_stale_temporaries(self.folder)
        failures, damaged = [], []
        for _, json_path in self.checkpoints():
            try:
                checkpoint = self.read(json_path, expected)
            except CheckpointError as e:
                failures.append(str(e))
                damaged.append(json_path)
                log(f"checkpoint skipped: {e}; trying the previous one")
                continue
            for path in damaged:  # kept for a look, but never taken as newest again
                for part in (path, path.with_suffix(".npz")):
                    if part.exists():
                        part.rename(part.with_name(part.name + ".corrupt"))
            return checkpoint
        if failures:
            raise CheckpointError(
                "No usable checkpoint in "
                f"{self.folder}:\n  " + "\n  ".join(failures) + "\nStart a new run directory "
                "(or remove the damaged files to start this one from scratch)."
            )
        return None

    def legacy_backup(self) -> Path | None:
        """The per-epoch Keras backup of a run made before these checkpoints, if any."""
        for name in (LEGACY_METADATA, LEGACY_WEIGHTS):
            if (self.folder / name).is_file():
                return self.folder / name
        return None
