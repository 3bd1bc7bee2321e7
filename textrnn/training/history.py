"""`HistoryLog`: the per-epoch `history.csv`, one row per epoch, rewritten atomically.

The rows live in memory (and in every checkpoint); the file is rewritten whole from them
after each epoch, so a resumed run never holds an epoch twice or half a row. The format
is that of Keras's `CSVLogger`: an `epoch` column (0-based), then the log keys in sorted
order (with `val_` twins when there was no validation), missing values as `NA`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from textrnn.training import atomic


class HistoryLog:
    """The rows of `history.csv`.

    Args:
        path: the CSV file.
        rows: rows already recorded (from a checkpoint), each a dict with an `epoch` key.

    Example:
        >>> history = HistoryLog(run_dir / "history.csv")
        >>> history.append(0, {"loss": 2.1, "val_loss": 2.0})  # rewrites the file
    """

    def __init__(self, path, rows=()):
        self.path = Path(path)
        self.rows = [dict(r) for r in rows]

    def append(self, epoch: int, logs: dict) -> None:
        """Records the row of `epoch`, replacing a row of the same or a later epoch."""
        self.rows = [r for r in self.rows if r["epoch"] < epoch]
        self.rows.append({"epoch": epoch, **{k: v for k, v in logs.items() if k != "epoch"}})
        self.write()

    def _keys(self) -> list[str]:
        if not self.rows:
            return []
        keys = sorted(k for k in self.rows[0] if k != "epoch")
        if keys and not any(k.startswith("val_") for k in keys):
            keys += [f"val_{k}" for k in keys]
        return keys

    def write(self) -> None:
        """Rewrites the file from the rows (atomically); no rows: no file."""
        if not self.rows:
            self.path.unlink(missing_ok=True)
            return
        keys = self._keys()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["epoch", *keys], lineterminator="\r\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({"epoch": row["epoch"], **{k: row.get(k, "NA") for k in keys}})
        atomic.write_text(self.path, out.getvalue())

    @staticmethod
    def read_rows(path) -> list[dict]:
        """The rows of an existing `history.csv` (numbers as floats), for old runs."""
        path = Path(path)
        if not path.is_file():
            return []
        rows = []
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    parsed = {"epoch": int(row.pop("epoch"))}
                    parsed.update({k: float(v) for k, v in row.items() if v not in ("NA", None)})
                except (TypeError, ValueError):
                    continue  # a half-written last row of an old run
                rows.append(parsed)
        return rows
