"""The global gradient norm of every training step, in `gradient_norms.csv` and TensorBoard.

`track_gradient_norm` makes an optimizer record ‖g‖₂ over all its gradients (before any
clipping) at every `apply`; `GradientNormLog` reads it after each step of the training
loop and writes one CSV row per step (the epoch history stays one row per epoch) and a
`gradient_norm` scalar under the run's `logs/steps/` for TensorBoard. Rows are written
when a checkpoint is (and when training ends, however it ends), so after a kill the file
may hold steps beyond the checkpoint a resume starts from: `resume_at` drops them, and the
resumed steps write them again.

Example:
    >>> optimizer = track_gradient_norm(keras.optimizers.Adam(global_clipnorm=1.0))
    >>> log = GradientNormLog(run_dir, optimizer, clipnorm=1.0)
    >>> log.record(step=1, epoch=0, batch=0)   # after each training step
    >>> log.flush()
"""

from __future__ import annotations

import math
from pathlib import Path

import tensorflow as tf

GRADIENT_NORMS_FILE = "gradient_norms.csv"
COLUMNS = ("step", "epoch", "batch", "gradient_norm", "clipped")


def track_gradient_norm(optimizer):
    """Makes `optimizer` record the global norm of the gradients of each `apply` call.

    The norm (float32, of the gradients as given, before `clipnorm` / `global_clipnorm`)
    is kept in `optimizer.gradient_norm`, a `tf.Variable` that is not one of the
    optimizer's own variables, so saved models and checkpoints are unchanged.

    Args:
        optimizer: a Keras 3 optimizer.

    Returns:
        The same optimizer.
    """
    if hasattr(optimizer, "gradient_norm"):
        return optimizer
    norm = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="gradient_norm")
    apply = optimizer.apply

    def apply_and_record(grads, trainable_variables=None):
        given = [tf.cast(g, tf.float32) for g in grads if g is not None]
        norm.assign(tf.linalg.global_norm(given) if given else 0.0)
        return apply(grads, trainable_variables)

    optimizer.apply = apply_and_record
    # Set through object.__setattr__: Keras's tracker must not take it for a variable.
    object.__setattr__(optimizer, "gradient_norm", norm)
    return optimizer


class GradientNormLog:
    """One row per training step: `step, epoch, batch, gradient_norm, clipped`.

    `step` counts from 1 over the whole run, `epoch` and `batch` from 0; `clipped` is 1
    when the norm exceeded `clipnorm` (so the step was scaled down to it), else 0.

    Args:
        run_dir: the run directory (`gradient_norms.csv`, `logs/steps/`).
        optimizer: an optimizer passed through `track_gradient_norm`.
        clipnorm: the recipe's global clip norm (0: none).
        tensorboard: also write a `gradient_norm` scalar per step for TensorBoard.
    """

    def __init__(self, run_dir, optimizer, clipnorm: float = 0.0, tensorboard: bool = True):
        self.path = Path(run_dir) / GRADIENT_NORMS_FILE
        self.norm = optimizer.gradient_norm
        self.clipnorm = float(clipnorm or 0.0)
        self.pending: list[tuple] = []
        self.writer = (
            tf.summary.create_file_writer(str(Path(run_dir) / "logs" / "steps"))
            if tensorboard
            else None
        )

    def resume_at(self, step: int) -> None:
        """Keeps the rows of steps `<= step` (whole lines only) and drops the rest."""
        rows = read_gradient_norms(self.path) if self.path.is_file() else []
        kept = [r for r in rows if r["step"] <= step]
        if len(kept) != len(rows) or not self.path.is_file():
            self.path.write_text(
                ",".join(COLUMNS) + "\n" + "".join(_line(r) for r in kept), encoding="utf-8"
            )

    def record(self, step: int, epoch: int, batch: int) -> float:
        """Reads the norm of the step just taken; returns it."""
        value = float(self.norm.numpy())
        clipped = int(self.clipnorm > 0 and value > self.clipnorm)
        self.pending.append(
            {
                "step": step,
                "epoch": epoch,
                "batch": batch,
                "gradient_norm": value,
                "clipped": clipped,
            }
        )
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.scalar("gradient_norm", value, step=step)
        return value

    def flush(self) -> None:
        """Appends the recorded rows to the CSV."""
        if not self.path.is_file():
            self.path.write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
        if self.pending:
            with open(self.path, "a", encoding="utf-8") as f:
                f.writelines(_line(r) for r in self.pending)
            self.pending = []
        if self.writer is not None:
            self.writer.flush()


def _line(row: dict) -> str:
    norm = row["gradient_norm"]
    text = repr(float(norm)) if math.isfinite(norm) else str(float(norm))
    return f"{row['step']},{row['epoch']},{row['batch']},{text},{row['clipped']}\n"


def read_gradient_norms(path) -> list[dict]:
    """The complete rows of a `gradient_norms.csv` (a half-written last line is left out).

    Returns:
        `[{"step": int, "epoch": int, "batch": int, "gradient_norm": float,
        "clipped": int}, ...]`.

    Example:
        >>> read_gradient_norms("runs/x/gradient_norms.csv")[0]["gradient_norm"]
        3.1
    """
    rows = []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    # After the header; the last piece is "" when the file ends with a newline, or a row
    # that may be half-written when it does not.
    for line in lines[1:-1]:
        parts = line.split(",")
        if len(parts) != len(COLUMNS):
            continue
        try:
            rows.append(
                {
                    "step": int(parts[0]),
                    "epoch": int(parts[1]),
                    "batch": int(parts[2]),
                    "gradient_norm": float(parts[3]),
                    "clipped": int(parts[4]),
                }
            )
        except ValueError:
            continue
    return rows
