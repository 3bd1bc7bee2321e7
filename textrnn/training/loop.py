"""`fit_resumable`: the training loop every task runs, exactly resumable after a kill.

It is `model.fit`'s own epoch loop (Keras 3.15, `backend/tensorflow/trainer.py`) written
out, with the same pieces: the compiled `train_function` on a `tf.data` iterator, a
`keras.callbacks.CallbackList` (the progress bar, History, TensorBoard and the caller's
callbacks) and `model.evaluate` for validation. Written out, it can stop and start at any
step: a checkpoint (`textrnn.training.checkpoints`) at every epoch end and in between
every `train.checkpoint_every_minutes` of training and/or every
`train.checkpoint_every_steps` steps holds everything that decides the rest of the run:

- every variable of the model (weights, carried TBPTT state, the state of each layer's
  `SeedGenerator`, i.e. where its dropout masks are in their sequence), of the optimizer
  (moments, moving averages, the iteration count the learning-rate schedule reads) and
  of the metrics (the running sums of the epoch's figures);
- the input pipeline's position, as the number of batches taken: the tasks build their
  training dataset from the seed, repeated, so a resumed run rebuilds it and skips that
  many batches (`Dataset.skip`) - one iterator per run, as `fit` uses one when
  `steps_per_epoch` is given;
- the epoch and batch, the progress record (time, steps, tokens, best figure), the early
  stopping counters and the history rows.

A resumed run restores all of it, so its weights, history rows and token counts are those
of an uninterrupted run (tests/test_resume_exact.py). What it cannot restore: random
numbers drawn by TensorFlow's stateful ops (`tf.random.uniform` without a Keras
`SeedGenerator`, used by translation's scheduled sampling), and, without
`train.deterministic`, kernels whose results depend on thread timing (none on CPU here).

Under a `mirrored` or `multi_worker` strategy (`textrnn.training.distribute`) the same
loop runs with that module's distributed train step instead of Keras's `train_function`,
each replica on its share of every global batch; checkpoints hold the same variables
(read in cross-replica context) and are written the same way, on multi-worker jobs by
the chief only (`textrnn.training.launch`). Every decision that depends on a worker's
own clock (a time-based checkpoint, the time budget) is agreed on by all workers at each
step, so their collectives stay in step; a failed or timed-out collective (a lost
worker) stops the run with `WorkerLostError`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn.training import atomic, distribute, numerics
from textrnn.training import config as config_lib
from textrnn.training.averaging import AveragedWeights
from textrnn.training.checkpoints import Checkpoint, CheckpointError, CheckpointStore
from textrnn.training.faults import FaultSwitch
from textrnn.training.gradient_norms import GradientNormLog
from textrnn.training.guards import StopOnNonFiniteLoss
from textrnn.training.history import HistoryLog
from textrnn.training.progress import TrainingProgress
from textrnn.training.runs import BACKUP_DIR, BEST_WEIGHTS_FILE, HISTORY_FILE

# Why a run stopped before its last epoch (kept in the checkpoint, read by --resume).
EARLY_STOPPING, TIME_BUDGET, STOPPED = "early_stopping", "time_budget", "stop_training"


def _log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _to_python(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            out[key] = value
    return out


class _BestWeights(keras.callbacks.Callback):
    """Saves the weights (atomically) when the monitored figure beats the best so far."""

    def __init__(self, path: Path, progress: TrainingProgress):
        super().__init__()
        self.path, self.progress = path, progress

    def on_epoch_end(self, epoch, logs=None):
        if self.progress.improved((logs or {}).get(self.progress.monitor)):
            atomic.save_weights(self.model, self.path)


class _EpochLogs(keras.callbacks.Callback):
    """Keeps the epoch's logs as the callbacks left them (e.g. with `val_bleu` added)."""

    def __init__(self):
        super().__init__()
        self.logs = {}

    def on_epoch_end(self, epoch, logs=None):
        self.logs = dict(logs or {})


class _EarlyStopping:
    """Keras's `EarlyStopping` rule (min_delta 0, no baseline), with its counters as a
    dict that goes into every checkpoint (Keras's resets them at each `fit`)."""

    def __init__(self, patience: int, mode: str, state=None):
        self.patience, self.mode = patience, mode
        self.state = dict(state or {"wait": 0, "best": None})

    def should_stop(self, epoch: int, value) -> bool:
        if not self.patience or value is None:
            return False
        self.state["wait"] += 1
        best = self.state["best"]
        better = best is None or (value < best if self.mode == "min" else value > best)
        if better:
            self.state.update(best=float(value), wait=0)
            return False
        return self.state["wait"] >= self.patience and epoch > 0


def _state_variables(model) -> list:
    """Every variable a checkpoint holds: the model's (including `SeedGenerator` states
    and non-trainable state), the optimizer's and the metrics', in a fixed order."""
    seen, out = set(), []
    for v in [*model.variables, *model.optimizer.variables, *model.metrics_variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _build(model, train_ds) -> None:
    """Creates the optimizer and metric variables now (`fit` creates them when the train
    step is first traced), so a checkpoint can be restored before the first step."""
    # Keras's own symbolic build, as `fit` runs it under a distribution strategy.
    model._symbolic_build(data_batch=train_ds.element_spec)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _assign(variables, arrays) -> None:
    for variable, value in zip(variables, arrays, strict=True):
        variable.assign(value)


def _resume_legacy(store, model, steps_per_epoch, history, progress, log) -> dict | None:
    """Continues a run made before step checkpoints, from Keras's per-epoch backup.

    Weights, optimizer and epoch come back; dropout seeds and the data position are
    re-derived as a fresh run would have them, so the result is close to, but not
    bit-identical with, an uninterrupted run.
    """
    if store.legacy_backup() is None:
        return None
    folder = store.folder
    candidates = [
        (folder / "latest.weights.h5", folder / "training_metadata.json"),
        (folder / "latest.weights.h5.bkp", folder / "training_metadata.json.bkp"),
    ]
    failures = []
    for weights, metadata in candidates:
        if not weights.is_file():
            continue
        try:
            epoch = int(json.loads(metadata.read_text())["epoch"]) if metadata.is_file() else 0
            model.load_weights(weights)
        except (OSError, KeyError, ValueError, TypeError) as e:  # h5py's variants
            failures.append(f"{weights}: {e.__class__.__name__}: {str(e)[:200]}")
            continue
        rows = {r["epoch"]: r for r in HistoryLog.read_rows(history.path) if r["epoch"] < epoch}
        history.rows = [rows[e] for e in sorted(rows)]
        progress.state.update(epochs=epoch, steps=epoch * steps_per_epoch)
        log(
            f"Resuming from {weights}, the per-epoch backup of an earlier textrnn version "
            f"(after epoch {epoch}): weights and optimizer are restored, dropout seeds and "
            "the data order start afresh, so this run is not bit-identical to an "
            "uninterrupted one."
        )
        return {"epoch": epoch, "batch": 0, "step": epoch * steps_per_epoch, "stopped": None}
    raise CheckpointError(
        f"{folder} holds a per-epoch backup of an earlier textrnn version that cannot be "
        "read:\n  " + "\n  ".join(failures or ["no weights file"]) + "\nStart a new run "
        "directory."
    )


def fit_resumable(
    model,
    train_ds,
    val_ds,
    train: config_lib.TrainConfig,
    run_dir: Path,
    progress: TrainingProgress,
    *,
    steps_per_epoch=None,
    validation_steps=None,
    first_callbacks=(),
    verbose=1,
    log=None,
):
    """Trains `model` as `model.fit` would, resuming exactly from the run's newest good
    checkpoint if it has one, then restores the best weights.

    Callbacks, in this order: `StopOnNonFiniteLoss` (a NaN or infinite training loss
    raises `NonFiniteLossError` at once, before that step is checkpointed),
    `first_callbacks` (e.g. one that adds a validation figure to the logs), the
    best-weights file on `progress.monitor`, TensorBoard, then `progress`. With
    `train.ema_momentum`, `AveragedWeights` brackets validation, the best weights and
    TensorBoard, so those see the averaged weights and checkpoints the raw ones. After
    the callbacks of an epoch: its `history.csv` row, early stopping, the checkpoint,
    `progress.json` - in that order, so no record claims more than the checkpoint holds.

    Args:
        model: a compiled Keras model.
        train_ds: the training `tf.data.Dataset`, repeated, built the same way (from the
            seed) by every launch of the run.
        val_ds: validation data (a dataset or an `(x, y)` tuple), or None.
        train: the recipe's `[train]` section.
        run_dir: the run directory.
        progress: the run's `TrainingProgress`.
        steps_per_epoch: batches per epoch (required, >= 1).
        validation_steps: batches of `val_ds` per validation; None = all of it.
        first_callbacks: callbacks that must run before the others.
        verbose: Keras progress-bar verbosity.
        log: `log(message)` for what the run resumes from; default: stderr.

    Returns:
        The history rows (one dict per epoch).

    Raises:
        CheckpointError: the run has checkpoints but none is usable (each one named).
        ConfigError: the model was not built under the recipe's strategy or precision
            (see `textrnn.training.launch.training_scope`).
        NonFiniteLossError: the training loss became NaN or infinite.
        ValueError: no `steps_per_epoch`, or the training dataset ran out.
        WorkerLostError: multi-worker: a collective failed or timed out (a worker
            stopped); the last checkpoint is intact.

    Example:
        >>> fit_resumable(model, train_ds, val_ds, cfg.train, run_dir, progress,
        ...               steps_per_epoch=cfg.train.steps_per_epoch)
    """
    if (
        isinstance(steps_per_epoch, bool)
        or not isinstance(steps_per_epoch, int)
        or steps_per_epoch < 1
    ):
        raise ValueError(
            "fit_resumable needs steps_per_epoch >= 1 over a repeated training dataset. "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
    with model.distribute_strategy.scope():
        run = _ResumableRun(model, train, Path(run_dir), progress, steps_per_epoch,
                            log or _log_to_stderr)  # fmt: skip
        run.restore_or_start(train_ds)
        callbacks = run.callbacks(first_callbacks, verbose)
        if run.has_work_left():
            if run.restored is not None and run.position["batch"] == 0:
                run.assign_restored()  # before on_epoch_begin: e.g. a state reset follows
            try:
                run.train(train_ds, val_ds, validation_steps, callbacks)
            except tf.errors.OpError as e:
                if not run.multi_worker:
                    raise
                raise distribute.WorkerLostError(run.lost_worker_message(e)) from None
            finally:  # also the steps up to a non-finite loss, for the record
                if run.gradient_norms is not None:
                    run.gradient_norms.flush()
        elif run.restored is not None:
            run.assign_restored()
        if isinstance(model.optimizer, keras.optimizers.Optimizer):
            model.optimizer.finalize_variable_values(model.trainable_weights)
        if run.best_path.exists():
            model.load_weights(str(run.best_path))
    return run.history.rows


class _ResumableRun:
    """The state of one launch of `fit_resumable` and the epoch loop it runs."""

    def __init__(self, model, train, run_dir, progress, steps_per_epoch, log):
        self.model, self.train_config, self.run_dir = model, train, run_dir
        self.progress, self.steps_per_epoch, self.log = progress, steps_per_epoch, log
        self.faults = FaultSwitch()
        self.store = CheckpointStore(
            run_dir / BACKUP_DIR, keep=train.keep_checkpoints, faults=self.faults
        )
        self.history = HistoryLog(run_dir / HISTORY_FILE)
        self.early = _EarlyStopping(train.early_stopping_patience, progress.mode)
        self.best_path = run_dir / BEST_WEIGHTS_FILE
        self.position = {"epoch": 0, "batch": 0, "step": 0, "stopped": None}
        self.restored = None
        self.recorder = _EpochLogs()
        self.gradient_norms = (
            GradientNormLog(run_dir, model.optimizer, train.clipnorm)
            if hasattr(model.optimizer, "gradient_norm")
            else None
        )
        self.variables = []
        self._last_save = time.monotonic()
        self.strategy = model.distribute_strategy
        self.distributed = distribute.kind_of(self.strategy) != "default"
        self.multi_worker = distribute.kind_of(self.strategy) == "multi_worker"

    def lost_worker_message(self, error) -> str:
        detail = _first_reason(getattr(error, "message", None) or str(error))
        newest = self.store.checkpoints()
        since = f"{newest[0][1]}" if newest else "none yet"
        if not distribute.is_chief(self.strategy):
            since = "in the chief's run directory"
        return (
            f"a collective operation failed at step {self.position['step'] + 1} "
            f"({error.__class__.__name__}: {detail}): another worker stopped, or did not "
            f"answer within train.collective_timeout_seconds = "
            f"{self.train_config.collective_timeout_seconds:g}. Stop every worker and "
            f"restart the job with --resume (newest checkpoint: {since})."
        )

    def restore_or_start(self, train_ds) -> None:
        distribute.check_model_strategy(self.model, self.train_config)
        numerics.prepare_model(self.model, self.train_config)
        if self.distributed:
            distribute.aggregate_first(self.model.optimizer)
        _build(self.model, train_ds)
        self.variables = _state_variables(self.model)
        checkpoint: Checkpoint | None = self.store.latest(
            [(tuple(v.shape), v.dtype) for v in self.variables], log=self.log
        )
        if checkpoint is not None:
            state = checkpoint.state
            self.position, self.history.rows = dict(state["position"]), state["history"]
            self.progress.restore(state["progress"])
            self.early.state = dict(state["early_stopping"])
            self.restored = checkpoint.arrays
            p = self.position
            self.log(
                f"Resuming from checkpoint {checkpoint.path} (epoch {p['epoch'] + 1}, "
                f"batch {p['batch']} of {self.steps_per_epoch}, step {p['step']})"
            )
        elif legacy := _resume_legacy(
            self.store, self.model, self.steps_per_epoch, self.history, self.progress, self.log
        ):
            self.position = legacy
        else:  # a new run, or one killed before its first checkpoint: from scratch
            self.progress.restore(
                {"train_seconds": 0.0, "steps": 0, "tokens": 0, "best_value": None, "epochs": 0}
            )
            self.best_path.unlink(missing_ok=True)
        self.history.write()
        if self.gradient_norms is not None:
            self.gradient_norms.resume_at(self.position["step"])
        if self.multi_worker:
            self._check_same_start()

    def _check_same_start(self) -> None:
        """Every worker must start from the same checkpoint (each read its own copy)."""
        step = float(self.position["step"])
        total, workers = distribute.sum_over_workers(self.strategy, [step, 1.0])
        if total != step * workers:
            raise distribute.DistributeError(
                f"The workers of this job resume from different steps (this one from step "
                f"{int(step)}, the mean is {total / workers:g}): their copies of the run "
                "directory differ. Restart every worker with the same run directory."
            )

    def callbacks(self, first_callbacks, verbose):
        model, train = self.model, self.train_config
        averaged = AveragedWeights(model) if train.ema_momentum else None
        callbacks = [StopOnNonFiniteLoss()]
        if averaged:
            callbacks.append(averaged.put_in)
        callbacks += [
            *first_callbacks,
            _BestWeights(self.best_path, self.progress),
            keras.callbacks.TensorBoard(str(self.run_dir / "logs"), update_freq="epoch"),
        ]
        if averaged:
            callbacks.append(averaged.take_out)
        callbacks += [self.progress, self.recorder]
        return keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=train.epochs,
            steps=self.steps_per_epoch,
            model=model,
        )

    def has_work_left(self) -> bool:
        stopped, progress = self.position["stopped"], self.progress
        if stopped in (EARLY_STOPPING, STOPPED):
            return False
        if (
            stopped == TIME_BUDGET
            and progress.max_seconds
            and progress.state["train_seconds"] >= progress.max_seconds
        ):
            return False
        return self.position["epoch"] < self.train_config.epochs

    def assign_restored(self) -> None:
        _assign(self.variables, self.restored)

    def _checkpoint_due(self, step: int) -> bool:
        every, minutes = (
            self.train_config.checkpoint_every_steps,
            self.train_config.checkpoint_every_minutes,
        )
        if every and step % every == 0:
            return True
        return bool(minutes) and time.monotonic() - self._last_save >= minutes * 60.0

    def save_checkpoint(self) -> None:
        if self.gradient_norms is not None:
            self.gradient_norms.flush()
        state = {
            "position": dict(self.position),
            "history": self.history.rows,
            "progress": self.progress.snapshot(),
            "early_stopping": dict(self.early.state),
        }
        self.store.save(self.position["step"], state, [v.numpy() for v in self.variables])
        self.progress.save()
        self._last_save = time.monotonic()

    def train(self, train_ds, val_ds, validation_steps, callbacks) -> None:
        """The epoch loop of `fit`, from `self.position` on."""
        model, position, progress = self.model, self.position, self.progress
        steps_per_epoch = self.steps_per_epoch
        skip = position["step"]
        dataset = train_ds.skip(skip) if skip else train_ds
        if self.distributed:
            iterator = iter(distribute.distribute_dataset(self.strategy, dataset))
            train_function = distribute.make_train_function(model, self.strategy)
        else:
            iterator = iter(model.distribute_strategy.experimental_distribute_dataset(dataset))
            model.make_train_function()
            train_function = model.train_function
        model.stop_training = False
        first_epoch, first_batch = position["epoch"], position["batch"]
        val_x, val_y, val_weights = _unpack(val_ds)
        callbacks.on_train_begin()
        self._last_save = time.monotonic()
        epoch_logs = None
        for epoch in range(first_epoch, self.train_config.epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            start = 0
            if epoch == first_epoch and first_batch:
                # Mid-epoch: after on_epoch_begin, so that its resets (metrics, carried
                # TBPTT state) give way to this epoch's checkpointed values.
                self.assign_restored()
                start = first_batch
            logs = {}
            for batch in range(start, steps_per_epoch):
                callbacks.on_train_batch_begin(batch)
                try:
                    logs = train_function(iterator)
                except (StopIteration, tf.errors.OutOfRangeError):
                    raise ValueError(
                        f"The training dataset ran out after {position['step']} batches; "
                        "fit_resumable needs a repeated dataset."
                    ) from None
                if self.gradient_norms is not None:
                    self.gradient_norms.record(position["step"] + 1, epoch, batch)
                callbacks.on_train_batch_end(batch, logs)
                position.update(epoch=epoch, batch=batch + 1, step=position["step"] + 1)
                self.faults.after_step(position["step"])
                due = batch + 1 < steps_per_epoch and self._checkpoint_due(position["step"])
                if self.multi_worker:  # the same decisions on every worker
                    due, model.stop_training = distribute.agree(
                        self.strategy, [due, bool(model.stop_training)]
                    )
                if model.stop_training:
                    break
                if due:
                    self.save_checkpoint()
            metrics = model.get_metrics_result()
            epoch_logs = _to_python(metrics if set(logs) == set(metrics) else logs)
            if val_x is not None and self.multi_worker:  # Keras's evaluate fails here
                callbacks.on_test_begin()
                val_logs = distribute.evaluate(
                    model, self.strategy, _as_dataset(val_x, val_y, val_weights), validation_steps
                )
                callbacks.on_test_end(val_logs)
            elif val_x is not None:
                val_logs = model.evaluate(
                    x=val_x,
                    y=val_y,
                    sample_weight=val_weights,
                    steps=validation_steps,
                    callbacks=callbacks,
                    return_dict=True,
                )
            if val_x is not None:
                epoch_logs.update({f"val_{k}": v for k, v in _to_python(val_logs).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            epoch_logs = self.recorder.logs
            self.history.append(epoch, epoch_logs)
            if model.stop_training:  # the time budget, or a caller's callback
                budget = progress.max_seconds and progress.elapsed() >= progress.max_seconds
                position["stopped"] = TIME_BUDGET if budget else STOPPED
            if self.early.should_stop(epoch, epoch_logs.get(progress.monitor)):
                model.stop_training = True
                position["stopped"] = EARLY_STOPPING
            position.update(epoch=epoch + 1, batch=0)
            self.save_checkpoint()
            if model.stop_training:
                break
        callbacks.on_train_end(logs=epoch_logs)


def _first_reason(message: str) -> str:
    """The line of a TensorFlow error that says what happened (not "Graph execution
    error:", not the node it was detected at)."""
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node", "File ")):
            return line[:300]
    return message.strip()[:300]


def _as_dataset(x, y, sample_weight, batch_size=32):
    """Validation data as a batched dataset (arrays: in batches of 32, Keras's default)."""
    if isinstance(x, tf.data.Dataset):
        return x
    parts = tuple(p for p in (x, y, sample_weight) if p is not None)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)


def _unpack(val_ds):
    if isinstance(val_ds, tuple):
        return keras.utils.unpack_x_y_sample_weight(val_ds)
    return val_ds, None, None
