"""What every task's training shares: run directories, resumable `fit`, schedules.

A run directory holds everything a run needs and produces:

    run_dir/
      config.toml        the resolved recipe, with its task (a resumed run must match it)
      vocab*.txt         the vocabulary (or vocabularies) the model was trained with
      backup/            BackupAndRestore state (weights + optimizer + epoch), for --resume
      best.weights.h5    the best weights so far by the monitored validation figure
      model.keras        the best model (what evaluate / generate / predict / export use)
      history.csv        per-epoch metrics
      logs/              TensorBoard logs
      progress.json      training seconds, tokens seen and the best validation figure so far
      results.json       final figures

Each task module (`charlm_training`, `sentiment_training`, `translation_training`) builds
its data and model and calls `fit_resumable`; `load_run` loads any finished run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from textrnn import config as config_lib

CONFIG_FILE = "config.toml"
MODEL_FILE = "model.keras"
BEST_WEIGHTS_FILE = "best.weights.h5"
PROGRESS_FILE = "progress.json"
RESULTS_FILE = "results.json"


class RunDirError(RuntimeError):
    """The run directory is in a state that does not allow the requested action."""


class TrainingProgress(keras.callbacks.Callback):
    """Keeps training time, tokens and the best validation figure across resumes; stops
    training at the time budget.

    Args:
        path: the `progress.json` file (read if it exists, rewritten after every epoch).
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
        self.state = {"train_seconds": 0.0, "tokens": 0, "best_value": None, "epochs": 0}
        if self.path.exists():
            self.state.update(json.loads(self.path.read_text()))
        self.state["monitor"] = monitor
        self._start = None
        self._base_seconds = self.state["train_seconds"]

    def elapsed(self):
        return self._base_seconds + (time.monotonic() - self._start)

    def improved(self, value) -> bool:
        best = self.state["best_value"]
        return best is None or (value < best if self.mode == "min" else value > best)

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.state["tokens"] += self.tokens_per_step
        if self.max_seconds and self.elapsed() >= self.max_seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.state["train_seconds"] = self.elapsed()
        self.state["epochs"] = epoch + 1
        value = (logs or {}).get(self.monitor)
        if value is not None and self.improved(value):
            self.state["best_value"] = float(value)
        self.path.write_text(json.dumps(self.state, indent=2))

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
        }


def learning_rate(train: config_lib.TrainConfig, total_steps: int):
    """The recipe's learning rate: constant, or linear warm-up then cosine decay to
    `min_learning_rate` over `total_steps`."""
    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule != "cosine":
        raise config_lib.ConfigError(
            f"`train.lr_schedule` must be 'cosine' or 'constant'. Received: {train.lr_schedule!r}"
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if train.warmup_steps else train.learning_rate,
        decay_steps=max(total_steps - train.warmup_steps, 1),
        alpha=train.min_learning_rate / train.learning_rate,
        warmup_target=train.learning_rate if train.warmup_steps else None,
        warmup_steps=train.warmup_steps,
    )


def make_optimizer(train: config_lib.TrainConfig, total_steps: int | None = None):
    """Adam(W) with gradient clipping by global norm and the recipe's LR schedule, keeping
    a moving average of the weights when `train.ema_momentum` is set.

    Args:
        train: the recipe's `[train]` section.
        total_steps: optimizer steps of the whole run (default `epochs * steps_per_epoch`).
    """
    total = total_steps if total_steps is not None else train.epochs * train.steps_per_epoch
    if not 0.0 <= train.ema_momentum < 1.0:
        raise config_lib.ConfigError(
            f"`train.ema_momentum` must be in [0, 1) (0 = off). Received: {train.ema_momentum!r}"
        )
    kwargs = {
        "learning_rate": learning_rate(train, total),
        "global_clipnorm": train.clipnorm or None,
    }
    if train.ema_momentum:
        kwargs.update(use_ema=True, ema_momentum=train.ema_momentum)
    if train.weight_decay:
        return keras.optimizers.AdamW(weight_decay=train.weight_decay, **kwargs)
    return keras.optimizers.Adam(**kwargs)


class AveragedWeights:
    """Lets validation, the best-weights checkpoint and the saved model use the optimizer's
    moving average of the weights (`use_ema=True`), while training steps and the epoch
    backup keep the raw weights.

    Keras's `SwapEMAWeights(swap_on_epoch=True)` leaves the average in the model during
    every callback after it, so the epoch backup would hold the two sets of weights
    swapped and `--resume` would continue from the average. Here two callbacks bracket
    the checkpoint instead: `put_in` (first in the list) swaps the average in when
    validation begins (or, without a validation set, at the end of the epoch), and it
    stays there through the checkpoint; `take_out` (just before `BackupAndRestore`)
    swaps the raw weights back. `fit` validates only at the end of an epoch, so no
    training step ever sees the average.

    Args:
        model: a model compiled with an optimizer built with `use_ema=True`.
    """

    def __init__(self, model):
        self.model = model
        self.average_in_model = False
        self.put_in = keras.callbacks.LambdaCallback(
            on_test_begin=lambda logs: self._set(True),
            on_epoch_end=lambda epoch, logs: self._set(True),
        )
        self.take_out = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: self._set(False)
        )

    def _set(self, average: bool):
        if average == self.average_in_model:
            return
        optimizer = self.model.optimizer
        averages = getattr(optimizer, "_model_variables_moving_average", None)
        if not averages:
            raise ValueError("AveragedWeights needs an optimizer built with use_ema=True.")
        for variable, average_variable in zip(optimizer._trainable_variables, averages):
            raw = variable.numpy()
            variable.assign(average_variable)
            average_variable.assign(raw)
        self.average_in_model = average


def read_run_config(run_dir):
    """The resolved recipe saved in a run directory, or None if there is none."""
    path = Path(run_dir) / CONFIG_FILE
    return config_lib.load_config(path) if path.exists() else None


def prepare_run_dir(run_dir: Path, cfg, resume: bool):
    """Creates a run directory for `cfg`, or checks that `--resume` continues the same run.

    Raises:
        RunDirError: resuming a directory without a run or with another recipe, or
            starting in a non-empty directory without `resume`.
    """
    config_path = run_dir / CONFIG_FILE
    if resume:
        if not config_path.exists():
            raise RunDirError(
                f"--resume given, but {run_dir} holds no run ({CONFIG_FILE} missing)."
            )
        saved = config_lib.load_config(config_path)
        if saved != cfg:
            raise RunDirError(
                f"--resume: the recipe differs from the one {run_dir} was started with.\n"
                f"  saved:     {config_lib.to_dict(saved)}\n  requested: {config_lib.to_dict(cfg)}"
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(
            f"Run directory {run_dir} is not empty. Pass --resume to continue that run, "
            "or choose a new directory."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config_lib.to_toml(cfg), encoding="utf-8")


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
    more than the others hold): `first_callbacks` (e.g. one that adds a validation figure to
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
    callbacks = [averaged.put_in] if averaged else []
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


def load_keras_model(path: Path):
    """Loads a `.keras` file, naming the file when it is missing, truncated or foreign."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {path.parent} a finished training run?")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which one
        raise ValueError(f"Could not load the model file {path}: {e}") from e


def load_run(run_dir):
    """Loads `(model, tokenizer, config)` from any finished run directory.

    For a translation run `tokenizer` is the pair `(source_tokenizer, target_tokenizer)`.

    Raises:
        FileNotFoundError: the model or a vocabulary file is missing.
        VocabularyError: a vocabulary does not match the model.
    """
    cfg = read_run_config(run_dir)
    task = config_lib.task_of(cfg) if cfg is not None else "charlm"
    if task == "sentiment":
        from textrnn.sentiment_training import load_sentiment_run as load
    elif task == "translate":
        from textrnn.translation_training import load_translation_run as load
    else:
        from textrnn.charlm_training import load_charlm_run as load
    return load(run_dir)
