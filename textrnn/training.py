"""Training the character language model with `model.fit`, resumable after a kill.

A run directory holds everything a run needs and produces:

    run_dir/
      config.toml        the resolved recipe (a resumed run must match it)
      vocab.txt          the character vocabulary
      backup/            BackupAndRestore state (weights + optimizer + epoch), for --resume
      model.keras        the best model by validation loss (what evaluate/generate/export use)
      history.csv        per-epoch metrics
      logs/              TensorBoard logs
      progress.json      training seconds, tokens seen and best validation loss so far
      results.json       final figures (validation loss both ways, time, tokens/s)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn import config as config_lib
from textrnn import datasets, evaluation, pipelines
from textrnn.char_lm import CharLM
from textrnn.char_tokenizer import CharTokenizer
from textrnn.metrics import BitsPerCharacter, Perplexity

CONFIG_FILE = "config.toml"
VOCAB_FILE = "vocab.txt"
MODEL_FILE = "model.keras"
PROGRESS_FILE = "progress.json"
RESULTS_FILE = "results.json"


class RunDirError(RuntimeError):
    """The run directory is in a state that does not allow the requested action."""


@keras.saving.register_keras_serializable(package="textrnn")
class StateCarryingLM(keras.Model):
    """Wraps a `CharLM` for truncated backpropagation through time.

    During training the final state of each batch becomes the initial state of the
    next (gradients stop at the window boundary), which is right for the contiguous
    streams of `pipelines.lm_stream_windows`. Outside training it scores from a zero
    state. The carried state lives here, not in the `CharLM`, so the saved language
    model stays batch-size independent.
    """

    def __init__(self, lm: CharLM, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.lm = lm
        self.batch_size = batch_size
        self.carried = [
            [
                self.add_weight(
                    shape=(batch_size, lm.units),
                    initializer="zeros",
                    trainable=False,
                    name=f"carried_{i}_{j}",
                )
                for j in range(lm.state_size_per_layer)
            ]
            for i in range(lm.num_layers)
        ]

    def reset_carried_state(self):
        for layer in self.carried:
            for var in layer:
                var.assign(tf.zeros_like(var))

    def call(self, inputs, training=False):
        if not training:
            return self.lm(inputs, training=False)
        state = tuple(tuple(tf.convert_to_tensor(v) for v in layer) for layer in self.carried)
        logits, new_state = self.lm(inputs, initial_state=state, training=True, return_state=True)
        for layer_vars, layer_state in zip(self.carried, new_state):
            for var, value in zip(layer_vars, layer_state):
                var.assign(tf.stop_gradient(value))
        return logits


class _ResetCarriedState(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_carried_state()


class _Progress(keras.callbacks.Callback):
    """Keeps training time and tokens across resumes; stops at the time budget."""

    def __init__(self, path: Path, tokens_per_step: int, max_minutes: float):
        super().__init__()
        self.path = path
        self.tokens_per_step = tokens_per_step
        self.max_seconds = max_minutes * 60.0
        self.state = {"train_seconds": 0.0, "tokens": 0, "best_val_loss": None, "epochs": 0}
        if path.exists():
            self.state.update(json.loads(path.read_text()))
        self._start = None
        self._base_seconds = self.state["train_seconds"]

    def elapsed(self):
        return self._base_seconds + (time.monotonic() - self._start)

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.state["tokens"] += self.tokens_per_step
        if self.max_seconds and self.elapsed() >= self.max_seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.state["train_seconds"] = self.elapsed()
        self.state["epochs"] = epoch + 1
        val = (logs or {}).get("val_loss")
        if val is not None and (
            self.state["best_val_loss"] is None or val < self.state["best_val_loss"]
        ):
            self.state["best_val_loss"] = float(val)
        self.path.write_text(json.dumps(self.state, indent=2))


def _learning_rate(train: config_lib.TrainConfig):
    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule != "cosine":
        raise config_lib.ConfigError(
            f"`train.lr_schedule` must be 'cosine' or 'constant'. Received: {train.lr_schedule!r}"
        )
    total = max(train.epochs * train.steps_per_epoch - train.warmup_steps, 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if train.warmup_steps else train.learning_rate,
        decay_steps=total,
        alpha=train.min_learning_rate / train.learning_rate,
        warmup_target=train.learning_rate if train.warmup_steps else None,
        warmup_steps=train.warmup_steps,
    )


def make_optimizer(train: config_lib.TrainConfig):
    """Adam(W) with gradient clipping by global norm and the recipe's LR schedule."""
    kwargs = {"learning_rate": _learning_rate(train), "global_clipnorm": train.clipnorm or None}
    if train.weight_decay:
        return keras.optimizers.AdamW(weight_decay=train.weight_decay, **kwargs)
    return keras.optimizers.Adam(**kwargs)


def build_charlm(cfg: config_lib.CharLMConfig, vocab_size: int) -> CharLM:
    model = CharLM(vocab_size=vocab_size, **config_lib.to_dict(cfg.model))
    model.build()
    return model


def _prepare_run_dir(run_dir: Path, cfg, resume: bool):
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


def load_run(run_dir):
    """Loads `(model, tokenizer, config)` from a run directory (or an export source).

    Raises:
        FileNotFoundError: the model or vocabulary file is missing.
        VocabularyError: the vocabulary does not match the model's vocabulary size.
    """
    from textrnn.char_tokenizer import VocabularyError

    run_dir = Path(run_dir)
    model_path, vocab_path = run_dir / MODEL_FILE, run_dir / VOCAB_FILE
    for path in (model_path, vocab_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {run_dir} a finished training run?")
    tokenizer = CharTokenizer.load(vocab_path)
    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which one
        raise ValueError(f"Could not load the model file {model_path}: {e}") from e
    if model.vocab_size != tokenizer.vocab_size:
        raise VocabularyError(
            f"Vocabulary {vocab_path} has {tokenizer.vocab_size} ids but the model in "
            f"{model_path} was trained with {model.vocab_size}: they do not belong together."
        )
    cfg = None
    if (run_dir / CONFIG_FILE).exists():
        cfg = config_lib.load_config(run_dir / CONFIG_FILE)
    return model, tokenizer, cfg


def train_charlm(cfg: config_lib.CharLMConfig, run_dir, *, resume=False, verbose=1):
    """Trains a `CharLM` from a recipe; safe to kill and `resume`.

    Args:
        cfg: a `CharLMConfig` (see `textrnn.config.load_config`).
        run_dir: the run directory (layout in the module docstring).
        resume: continue the run in `run_dir` from its last completed epoch.
        verbose: Keras progress-bar verbosity.

    Returns:
        The results dict also written to `run_dir/results.json`.

    Example:
        >>> cfg = load_config("models/charlm-shakespeare/config.toml", ["train.epochs=1"])
        >>> train_charlm(cfg, "runs/demo")["val_loss_windows"]
    """
    run_dir = Path(run_dir)
    corpus = datasets.load_char_corpus(cfg.data.dataset)  # fails before touching run_dir
    _prepare_run_dir(run_dir, cfg, resume)
    keras.utils.set_random_seed(cfg.train.seed)
    vocab_path = run_dir / VOCAB_FILE
    if resume and vocab_path.exists():
        tokenizer = CharTokenizer.load(vocab_path)
    else:
        tokenizer = CharTokenizer.from_text(corpus["train"])
        tokenizer.save(vocab_path)
    train_ids = tokenizer.encode_text(corpus["train"])
    val_ids = tokenizer.encode_text(corpus["validation"])
    seq_len, batch = cfg.data.seq_len, cfg.data.batch_size
    for split, ids in (("train", train_ids), ("validation", val_ids)):
        if ids.size < seq_len + 2:
            raise ValueError(
                f"The {split} split has {ids.size} characters, fewer than one window "
                f"(data.seq_len + 2 = {seq_len + 2}). Use a longer corpus or a smaller seq_len."
            )

    lm = build_charlm(cfg, tokenizer.vocab_size)
    callbacks = []
    if cfg.data.windows == "random":
        train_ds = pipelines.lm_random_windows(train_ids, seq_len, batch, seed=cfg.train.seed)
        model = lm
    elif cfg.data.windows == "stream":
        train_ds = pipelines.lm_stream_windows(train_ids, seq_len, batch).repeat()
        model = StateCarryingLM(lm, batch)
        model.build((batch, seq_len))
        callbacks.append(_ResetCarriedState())
    else:
        raise config_lib.ConfigError(
            f"`data.windows` must be 'random' or 'stream'. Received: {cfg.data.windows!r}"
        )

    offsets = evaluation.window_offsets(val_ids.size, seq_len, cfg.train.validation_windows, seed=1)
    val_windows = val_ids[offsets[:, None] + np.arange(seq_len + 1)[None, :]]
    val_ds = tf.data.Dataset.from_tensor_slices((val_windows[:, :-1], val_windows[:, 1:])).batch(
        batch
    )

    model.compile(
        optimizer=make_optimizer(cfg.train),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity(), BitsPerCharacter()],
    )
    progress = _Progress(run_dir / PROGRESS_FILE, batch * seq_len, cfg.train.max_minutes)
    best = progress.state["best_val_loss"]
    # Order matters for a kill between callbacks: the progress record goes last, so it
    # never claims an epoch that the backup, the history or the best model lack.
    callbacks += [
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best,
        ),
        keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False
        ),
    ]
    if cfg.train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.train.early_stopping_patience
            )
        )
    callbacks.append(progress)
    model.fit(
        train_ds,
        epochs=cfg.train.epochs,
        steps_per_epoch=cfg.train.steps_per_epoch,
        validation_data=val_ds,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipelines shuffle (with their own seed)
    )
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(str(run_dir / "best.weights.h5"))
    lm.save(run_dir / MODEL_FILE)

    results = evaluate_charlm(lm, val_ids, seq_len=seq_len)
    seconds = progress.state["train_seconds"]
    results.update(
        train_seconds=round(seconds, 1),
        train_tokens=progress.state["tokens"],
        train_tokens_per_second=round(progress.state["tokens"] / seconds, 1) if seconds else None,
        epochs=progress.state["epochs"],
        parameters=int(lm.count_params()),
        config=config_lib.to_dict(cfg),
    )
    (run_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2))
    return results


def evaluate_charlm(model, ids, seq_len=256, num_windows=2000, seed=0) -> dict:
    """Validation figures both ways (see `textrnn.evaluation`), nats and bits per char."""
    windows = evaluation.window_loss(
        model, ids, seq_len=seq_len, num_windows=num_windows, seed=seed
    )
    sequential = evaluation.sequential_loss(model, ids)
    return {
        "val_loss_windows": round(windows, 4),
        "val_bpc_windows": round(evaluation.bits_per_char(windows), 4),
        "val_loss_sequential": round(sequential, 4),
        "val_bpc_sequential": round(evaluation.bits_per_char(sequential), 4),
        "val_perplexity_sequential": round(math.exp(sequential), 3),
        "window_protocol": f"{num_windows} random windows of {seq_len} chars, seed {seed}",
    }
