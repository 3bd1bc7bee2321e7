"""Training the character language model, exactly resumable after a kill.

The run directory (see `textrnn.training.runs`) holds `vocab.txt`, the character
vocabulary; `results.json` gives the validation loss both ways (see
`textrnn.metrics.lm_evaluation`), time and tokens/s.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn.charlm.config import CharLMConfig
from textrnn.charlm.data import load_char_corpus
from textrnn.charlm.evaluate import describe_figures, evaluate_charlm
from textrnn.charlm.model import CharLM
from textrnn.data import pipelines
from textrnn.metrics import lm_evaluation
from textrnn.metrics.language_model import BitsPerCharacter, Perplexity
from textrnn.text.char_tokenizer import CharTokenizer
from textrnn.text.vocabulary import VocabularyError
from textrnn.training import atomic, runs
from textrnn.training import config as config_lib
from textrnn.training.determinism import seed_everything
from textrnn.training.loop import fit_resumable
from textrnn.training.optimizers import make_optimizer
from textrnn.training.progress import TrainingProgress, describe_training
from textrnn.training.threads import apply_thread_settings

VOCAB_FILE = "vocab.txt"


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


def build_charlm(cfg: CharLMConfig, vocab_size: int) -> CharLM:
    model = CharLM(vocab_size=vocab_size, **config_lib.to_dict(cfg.model))
    model.build()
    return model


def load_charlm_run(run_dir):
    """Loads `(model, tokenizer, config)` from a character-LM run directory.

    Raises:
        FileNotFoundError: the model or vocabulary file is missing.
        VocabularyError: the vocabulary does not match the model's vocabulary size.
    """
    run_dir = Path(run_dir)
    vocab_path = run_dir / VOCAB_FILE
    if not vocab_path.is_file():
        raise FileNotFoundError(f"{vocab_path} not found: is {run_dir} a finished training run?")
    tokenizer = CharTokenizer.load(vocab_path)
    model_path = run_dir / runs.MODEL_FILE
    model = runs.load_keras_model(model_path)
    if model.vocab_size != tokenizer.vocab_size:
        raise VocabularyError(
            f"Vocabulary {vocab_path} has {tokenizer.vocab_size} ids but the model in "
            f"{model_path} was trained with {model.vocab_size}: they do not belong together."
        )
    return model, tokenizer, runs.read_run_config(run_dir)


def train_charlm(cfg: CharLMConfig, run_dir, *, resume=False, verbose=1):
    """Trains a `CharLM` from a recipe; safe to kill and `resume`.

    Args:
        cfg: a `CharLMConfig` (see `textrnn.training.config.load_config`).
        run_dir: the run directory (layout in `textrnn.training.runs`).
        resume: continue the run in `run_dir` exactly, from its newest good checkpoint.
        verbose: Keras progress-bar verbosity.

    Returns:
        The results dict also written to `run_dir/results.json`.

    Example:
        >>> cfg = load_config("models/charlm-shakespeare/config.toml", ["train.epochs=1"])
        >>> train_charlm(cfg, "runs/demo")["val_loss_windows"]
    """
    run_dir = Path(run_dir)
    apply_thread_settings(cfg.train)  # before TensorFlow runs its first op
    corpus = load_char_corpus(cfg.data.dataset)  # fails before touching run_dir
    runs.prepare_run_dir(run_dir, cfg, resume)
    seed_everything(cfg.train)
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
        one_pass = (train_ids.size - 1) // seq_len // batch
        model = lm
    elif cfg.data.windows == "stream":
        train_ds = pipelines.lm_stream_windows(train_ids, seq_len, batch).repeat()
        one_pass = pipelines.num_stream_batches(train_ids.size, seq_len, batch)
        model = StateCarryingLM(lm, batch)
        model.build((batch, seq_len))
        callbacks.append(_ResetCarriedState())
    else:
        raise config_lib.ConfigError(
            f"`data.windows` must be 'random' or 'stream'. Received: {cfg.data.windows!r}"
        )

    offsets = lm_evaluation.window_offsets(
        val_ids.size, seq_len, cfg.train.validation_windows, seed=1
    )
    val_windows = val_ids[offsets[:, None] + np.arange(seq_len + 1)[None, :]]
    val_ds = tf.data.Dataset.from_tensor_slices((val_windows[:, :-1], val_windows[:, 1:])).batch(
        batch
    )

    # steps_per_epoch = 0: an epoch is about one pass over the training text.
    steps_per_epoch = cfg.train.steps_per_epoch or max(one_pass, 1)
    model.compile(
        optimizer=make_optimizer(cfg.train, cfg.train.epochs * steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity(), BitsPerCharacter()],
    )
    progress = TrainingProgress(
        run_dir / runs.PROGRESS_FILE, batch * seq_len, cfg.train.max_minutes
    )
    fit_resumable(
        model,
        train_ds,
        val_ds,
        cfg.train,
        run_dir,
        progress,
        steps_per_epoch=steps_per_epoch,
        first_callbacks=callbacks,
        verbose=verbose,
    )
    atomic.save_model(lm, run_dir / runs.MODEL_FILE)

    results = evaluate_charlm(lm, val_ids, seq_len=seq_len)
    results.update(
        **progress.summary(),
        parameters=int(lm.count_params()),
        config=config_lib.to_dict(cfg),
    )
    atomic.write_text(run_dir / runs.RESULTS_FILE, json.dumps(results, indent=2))
    return results


def summarize_results(results: dict) -> str:
    """A few lines on a finished character-LM run, for the terminal.

    Example:
        >>> print(summarize_results(train_charlm(cfg, "runs/demo")))
        validation: 1.4767 nats/char (2.130 bits/char), 2000 random windows of 256 chars, seed 0
        ...
    """
    return describe_figures(results) + "\n" + describe_training(results, "chars")
