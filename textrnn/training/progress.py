"""`TrainingProgress`: training time, steps, tokens and the best validation figure, kept
across resumed runs, and the time budget."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras

from textrnn.training import atomic
from textrnn.training.threads import current_thread_settings


class TrainingProgress(keras.callbacks.Callback):
    """Keeps training time, steps, tokens and the best validation figure across resumes;
    stops training at the time budget.

    The record (`state`) is part of every checkpoint; `progress.json` is rewritten
    (atomically) by the training loop after each checkpoint, so it never claims more than
    the newest checkpoint holds.

    Args:
        path: the `progress.json` file (read if it exists).
        tokens_per_step: tokens counted per training batch (an average where batches vary).
        max_minutes: wall-clock budget over all resumed runs; 0 = none.
        monitor: the validation figure to track, e.g. `"val_loss"`.
        mode: `"min"` or `"max"`: which direction is better.
    """

    def __init__(self, path: Path, tokens_per_step, max_minutes, monitor="val_loss", mode="min"):
        super().__init__()
        self.path = Path(path)
        self.tokens_per_step = tokens_per_step
        self.max_seconds = max_minutes * 60.0
        self.monitor, self.mode = monitor, mode
        self.state = {
            "train_seconds": 0.0,
            "steps": 0,
            "tokens": 0,
            "best_value": None,
            "epochs": 0,
        }
        if self.path.exists():
            try:
                self.state.update(json.loads(self.path.read_text()))
            except ValueError:  # a torn file of an old run; the checkpoint has the record
                pass
        self.state["monitor"] = monitor
        self._start = None
        self._base_seconds = self.state["train_seconds"]

    def restore(self, state: dict) -> None:
        """Continues from a checkpointed record."""
        self.state = {**self.state, **state, "monitor": self.monitor}
        self._base_seconds = self.state["train_seconds"]
        if self._start is not None:
            self._start = time.monotonic()

    def snapshot(self) -> dict:
        """The record now (training time up to this moment), for a checkpoint."""
        if self._start is not None:
            self.state["train_seconds"] = self.elapsed()
        return dict(self.state)

    def save(self) -> None:
        """Rewrites `progress.json` atomically."""
        atomic.write_text(self.path, json.dumps(self.state, indent=2))

    def elapsed(self):
        return self._base_seconds + (time.monotonic() - self._start)

    def improved(self, value) -> bool:
        if value is None or not math.isfinite(value):
            return False
        best = self.state["best_value"]
        return best is None or (value < best if self.mode == "min" else value > best)

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        self._base_seconds = self.state["train_seconds"]

    def on_train_batch_end(self, batch, logs=None):
        self.state["steps"] = self.state.get("steps", 0) + 1
        self.state["tokens"] += self.tokens_per_step
        if self.max_seconds and self.elapsed() >= self.max_seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.state["train_seconds"] = self.elapsed()
        self.state["epochs"] = epoch + 1
        value = (logs or {}).get(self.monitor)
        if value is not None and self.improved(value):
            self.state["best_value"] = float(value)

    def summary(self) -> dict:
        """Training time, tokens, throughput and epochs, for `results.json`."""
        seconds = self.state["train_seconds"]
        return {
            "train_seconds": round(seconds, 1),
            "train_tokens": int(self.state["tokens"]),
            "train_tokens_per_second": round(self.state["tokens"] / seconds, 1)
            if seconds
            else None,
            "epochs": self.state["epochs"],
            # The pools the throughput was measured under (0 = TensorFlow's default).
            "op_threads": current_thread_settings(),
        }


def describe_training(results: dict, unit: str = "tokens") -> str:
    """One line on the training a results dict records (epochs, tokens, time, speed).

    Example:
        >>> describe_training({"epochs": 3, "train_tokens": 12000, "train_seconds": 90.0,
        ...                    "train_tokens_per_second": 133.3, "parameters": 5000}, "chars")
        'trained 3 epochs: 12,000 chars in 1.5 min (133 chars/s), 5,000 parameters'
    """
    speed = results.get("train_tokens_per_second")
    return (
        f"trained {results['epochs']} epochs: {results['train_tokens']:,} {unit} in "
        f"{results['train_seconds'] / 60:.1f} min"
        + (f" ({speed:,.0f} {unit}/s)" if speed else "")
        + f", {results['parameters']:,} parameters"
    )
