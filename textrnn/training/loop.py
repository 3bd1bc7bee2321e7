"""`fit_resumable`: `model.fit` with the callbacks every run of every task gets."""

from __future__ import annotations

from pathlib import Path

import keras

from textrnn.training import config as config_lib
from textrnn.training.averaging import AveragedWeights
from textrnn.training.guards import StopOnNonFiniteLoss
from textrnn.training.progress import TrainingProgress
from textrnn.training.runs import BEST_WEIGHTS_FILE


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
):
    """`model.fit` with the callbacks every run gets, then the best weights restored.

    Callbacks, in this order (a kill between two of them never leaves a record that claims
    more than the others hold): `StopOnNonFiniteLoss` (a NaN or infinite training loss
    raises `NonFiniteLossError` at once), `first_callbacks` (e.g. one that adds a validation figure to
    the logs), CSV history, TensorBoard, best-weights checkpoint on `progress.monitor`,
    BackupAndRestore (what `--resume` continues from), early stopping, then `progress`.
    With `train.ema_momentum`, `AveragedWeights` brackets everything before
    BackupAndRestore, so validation and the checkpoint see the averaged weights.

    Args:
        model: a compiled Keras model.
        train_ds: training dataset (repeated when `steps_per_epoch` is given).
        val_ds: validation dataset, or None when a first callback supplies the figure.
        train: the recipe's `[train]` section.
        run_dir: the run directory.
        progress: the run's `TrainingProgress`.
        steps_per_epoch: batches per epoch; None = one pass over `train_ds`.
        validation_steps: batches of `val_ds` per validation; None = all of it.
        first_callbacks: callbacks that must run before the others.
        verbose: Keras progress-bar verbosity.
    """
    monitor, mode = progress.monitor, progress.mode
    averaged = AveragedWeights(model) if train.ema_momentum else None
    # First: a non-finite loss ends training before any later callback saves that batch.
    callbacks = [StopOnNonFiniteLoss()]
    if averaged:
        callbacks.append(averaged.put_in)
    callbacks += list(first_callbacks) + [
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / BEST_WEIGHTS_FILE),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=progress.state["best_value"],
        ),
    ]
    if averaged:
        callbacks.append(averaged.take_out)
    callbacks.append(
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False
        )
    )
    if train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=train.early_stopping_patience
            )
        )
    callbacks.append(progress)
    model.fit(
        train_ds,
        epochs=train.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_ds,
        validation_steps=validation_steps,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipelines shuffle (with their own seed)
    )
    if (run_dir / BEST_WEIGHTS_FILE).exists():
        model.load_weights(str(run_dir / BEST_WEIGHTS_FILE))
