"""Training `Seq2Seq` translators, exactly resumable after a kill.

Besides the common files (see `textrnn.training.runs`), a translation run directory holds
`source_vocab.txt` and `target_vocab.txt` (WordPiece vocabularies learned from the
training split only, each with its `.json` options) and `results.json` with validation
BLEU/chrF (greedy), training time and target tokens per second.

Text pipeline: WordPiece (tensorflow-text) rather than SentencePiece: its tokenising op
runs in the graph of an export (`WordpieceTokenizeWithOffsets`, which TensorFlow Serving's
model server links), it needs no extra package, and with `split_punctuation=False` the
pieces join back into the exact text, so sacreBLEU scores real detokenised output.
Sources carry no special tokens; targets are `<s> pieces` in and `pieces </s>` out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn.data import pipelines
from textrnn.metrics.translation import corpus_scores
from textrnn.text.loading import load_tokenizer
from textrnn.text.special_tokens import BOS_ID, EOS_ID, PAD_ID
from textrnn.text.vocabulary import VocabularyError
from textrnn.text.wordpiece_tokenizer import WordPieceTokenizer
from textrnn.training import atomic, runs
from textrnn.training import config as config_lib
from textrnn.training.determinism import seed_everything
from textrnn.training.loop import fit_resumable
from textrnn.training.losses import SmoothedCrossEntropy
from textrnn.training.optimizers import make_optimizer
from textrnn.training.progress import TrainingProgress, describe_training
from textrnn.training.threads import apply_thread_settings
from textrnn.translation.config import TranslationConfig, TranslationDataConfig
from textrnn.translation.data import load_splits
from textrnn.translation.evaluate import describe_figures, evaluate_translation
from textrnn.translation.model import Seq2Seq
from textrnn.translation.translator import Translator, make_translator

SOURCE_VOCAB_FILE = "source_vocab.txt"
TARGET_VOCAB_FILE = "target_vocab.txt"


@keras.saving.register_keras_serializable(package="textrnn")
class ScheduledSamplingTrainer(keras.Model):
    """Trains a `Seq2Seq` with scheduled sampling (Bengio et al., 2015).

    In training, each decoder input is, with probability `probability` (a variable that
    `ScheduledSamplingSchedule` raises over the epochs), the model's own best guess at the
    previous step instead of the reference token. The `Seq2Seq` itself is saved, not this
    wrapper.
    """

    def __init__(self, seq2seq, **kwargs):
        super().__init__(**kwargs)
        self.seq2seq = seq2seq
        self.probability = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="sampling_probability"
        )

    def call(self, inputs, training=False):
        if not training:
            return self.seq2seq(inputs, training=False)
        return self.seq2seq(inputs, training=True, sample_probability=self.probability)


class ScheduledSamplingSchedule(keras.callbacks.Callback):
    """Raises the sampling probability linearly from 0 (first epoch) to `final`."""

    def __init__(self, final: float, epochs: int):
        super().__init__()
        self.final, self.epochs = final, epochs

    def on_epoch_begin(self, epoch, logs=None):
        share = epoch / max(self.epochs - 1, 1)
        self.model.probability.assign(self.final * min(share, 1.0))


class ValidationBleu(keras.callbacks.Callback):
    """Adds `val_bleu` (sacreBLEU, greedy decoding) and `val_chrf` to the epoch logs."""

    def __init__(self, translator: Translator, sources, references, max_length=200):
        super().__init__()
        self.translator = translator
        self.sources, self.references = list(sources), list(references)
        self.max_length = max_length

    def on_epoch_end(self, epoch, logs=None):
        results = self.translator.translate_texts(
            self.sources, "greedy", max_length=self.max_length, warn=False, batch_size=128
        )
        scores = corpus_scores([r["translation"] for r in results], self.references)
        if logs is not None:
            logs["val_bleu"] = scores["bleu"]
            logs["val_chrf"] = scores["chrf"]


def learn_tokenizers(data: TranslationDataConfig, train, log=None):
    """Source and target WordPiece tokenisers learned from the training split.

    Args:
        data: the recipe's `[data]` section.
        train: the training pairs.
        log: optional `log(message)`, told when each vocabulary starts and how long it
            took (learning one takes about a minute on the larger corpora).
    """
    common = {"lowercase": data.lowercase, "split_punctuation": False}
    tokenizers = []
    for side, texts, size in (
        (data.source_language, train.sources, data.source_vocab_size),
        (data.target_language, train.targets, data.target_vocab_size),
    ):
        start = time.monotonic()
        if log:
            log(
                f"Learning the {side} WordPiece vocabulary ({size:,} pieces) from {len(texts):,} sentences..."
            )
        tokenizers.append(WordPieceTokenizer.learn(texts, size, **common))
        if log:
            log(
                f"  {tokenizers[-1].vocabulary_size():,} pieces in {time.monotonic() - start:.0f} s"
            )
    return tuple(tokenizers)


def encode_pairs(tokenizers, pairs, max_source_length, max_target_length):
    """Tokenises a split; pairs over the length limits are left out (and counted).

    Returns:
        `(source_rows, target_rows, skipped)`: int32 arrays per kept pair, targets with
        `</s>` appended, and the number of pairs left out.
    """
    sources = pipelines.encode_in_chunks(tokenizers[0].tokenize, pairs.sources)
    targets = pipelines.encode_in_chunks(tokenizers[1].tokenize, pairs.targets)
    kept_s, kept_t = [], []
    for s, t in zip(sources, targets):
        if 0 < len(s) <= max_source_length and len(t) + 1 <= max_target_length:
            kept_s.append(s)
            kept_t.append(np.append(t, EOS_ID).astype(np.int32))
    return kept_s, kept_t, len(sources) - len(kept_s)


def make_dataset(source_rows, target_rows, batch_size, boundaries, *, shuffle_seed=None):
    """`((source, target_in), target_out, weights)` batches, bucketed by target length."""
    src, src_len = pipelines.pad_rows(source_rows)
    tgt, tgt_len = pipelines.pad_rows(target_rows)
    ds = tf.data.Dataset.from_tensor_slices((src, src_len, tgt, tgt_len))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(src), seed=shuffle_seed, reshuffle_each_iteration=True)

    def to_example(s, s_len, t, t_len):
        target_out = t[:t_len]
        target_in = tf.concat([[BOS_ID], target_out[:-1]], 0)
        return s[:s_len], target_in, target_out

    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = pipelines.batch_by_length(ds, 2, boundaries, batch_size)

    def with_weights(source, target_in, target_out):
        weights = tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32)
        return (source, target_in), target_out, weights

    return ds.map(with_weights).prefetch(tf.data.AUTOTUNE)


def load_translation_run(run_dir):
    """Loads `(model, (source_tokenizer, target_tokenizer), config)` from a run directory.

    Raises:
        FileNotFoundError: the model or a vocabulary file is missing.
        VocabularyError: a vocabulary does not match the model.
    """
    run_dir = Path(run_dir)
    tokenizers = []
    for name in (SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name} not found: is {run_dir} a finished training run?"
            )
        tokenizers.append(load_tokenizer(run_dir / name))
    model_path = run_dir / runs.MODEL_FILE
    model = runs.load_keras_model(model_path)
    sizes = (model.source_vocab_size, model.target_vocab_size)
    for name, tok, size in zip((SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE), tokenizers, sizes):
        if tok.vocabulary_size() != size:
            raise VocabularyError(
                f"Vocabulary {run_dir / name} has {tok.vocabulary_size()} ids but the model "
                f"in {model_path} was trained with {size}: they do not belong together."
            )
    return model, tuple(tokenizers), runs.read_run_config(run_dir)


def build_seq2seq(cfg: TranslationConfig, tokenizers) -> Seq2Seq:
    model = Seq2Seq(
        tokenizers[0].vocabulary_size(),
        tokenizers[1].vocabulary_size(),
        **config_lib.to_dict(cfg.model),
    )
    model.build()
    return model


def train_translation(cfg: TranslationConfig, run_dir, *, resume=False, verbose=1):
    """Trains a `Seq2Seq` from a recipe; safe to kill and `resume`.

    Args:
        cfg: a `TranslationConfig` (see `textrnn.training.config.load_config`).
        run_dir: the run directory (layout in `textrnn.training.runs`).
        resume: continue the run in `run_dir` exactly, from its newest good checkpoint.
        verbose: Keras progress-bar verbosity.

    Returns:
        The results dict also written to `run_dir/results.json` (validation BLEU and chrF
        with greedy decoding, training time, target tokens/s, pairs left out).

    Example:
        >>> cfg = load_config("models/translate-multi30k-de-en/config.toml")
        >>> train_translation(cfg, "runs/de-en")["validation"]["bleu"]
    """
    run_dir = Path(run_dir)
    apply_thread_settings(cfg.train)  # before TensorFlow runs its first op
    data = cfg.data
    splits = load_splits(cfg)  # fails before touching run_dir
    runs.prepare_run_dir(run_dir, cfg, resume)
    seed_everything(cfg.train)
    paths = (run_dir / SOURCE_VOCAB_FILE, run_dir / TARGET_VOCAB_FILE)
    if resume and all(p.exists() for p in paths):
        tokenizers = tuple(load_tokenizer(p) for p in paths)
    else:
        tokenizers = learn_tokenizers(data, splits["train"], log=print if verbose else None)
        for tok, path in zip(tokenizers, paths):
            tok.save(path)

    limits = (data.max_source_length, data.max_target_length)
    train_src, train_tgt, skipped = encode_pairs(tokenizers, splits["train"], *limits)
    val_src, val_tgt, _ = encode_pairs(tokenizers, splits["validation"], 10**9, 10**9)
    lengths = np.array([len(t) for t in train_tgt])
    boundaries = pipelines.length_boundaries(lengths, max(data.num_buckets, 1))
    steps = pipelines.count_bucketed_batches(lengths, boundaries, data.batch_size)
    train_ds = make_dataset(
        train_src, train_tgt, data.batch_size, boundaries, shuffle_seed=cfg.train.seed
    ).repeat()
    val_ds = make_dataset(val_src, val_tgt, data.batch_size, boundaries)
    val_steps = pipelines.count_bucketed_batches(
        [len(t) for t in val_tgt], boundaries, data.batch_size
    )
    steps_per_epoch = cfg.train.steps_per_epoch or steps

    model = build_seq2seq(cfg, tokenizers)
    trainer, callbacks = model, []
    if cfg.train.scheduled_sampling > 0:
        trainer = ScheduledSamplingTrainer(model)
        callbacks.append(ScheduledSamplingSchedule(cfg.train.scheduled_sampling, cfg.train.epochs))
    monitor, mode = "val_loss", "min"
    if cfg.train.validation_bleu:
        translator = make_translator(model, tokenizers, cfg)
        valid = splits["validation"]
        callbacks.append(ValidationBleu(translator, valid.sources, valid.targets))
        monitor, mode = "val_bleu", "max"
    trainer.compile(
        optimizer=make_optimizer(cfg.train, cfg.train.epochs * steps_per_epoch),
        loss=SmoothedCrossEntropy(cfg.train.label_smoothing),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    )
    progress = TrainingProgress(
        run_dir / runs.PROGRESS_FILE,
        float(lengths.sum()) / steps,
        cfg.train.max_minutes,
        monitor=monitor,
        mode=mode,
    )
    fit_resumable(
        trainer,
        train_ds,
        val_ds,
        cfg.train,
        run_dir,
        progress,
        steps_per_epoch=steps_per_epoch,
        validation_steps=val_steps,
        first_callbacks=callbacks,
        verbose=verbose,
    )
    atomic.save_model(model, run_dir / runs.MODEL_FILE)

    validation, _ = evaluate_translation(
        model,
        tokenizers,
        cfg,
        "validation",
        splits,
        strategy="greedy",
        max_length=cfg.translate.max_length,
    )
    results = {
        "validation": validation,
        **progress.summary(),
        "monitor": monitor,
        "best_value": progress.state["best_value"],
        "steps_per_epoch": steps_per_epoch,
        "parameters": int(model.count_params()),
        "source_vocabulary_size": tokenizers[0].vocabulary_size(),
        "target_vocabulary_size": tokenizers[1].vocabulary_size(),
        "train_pairs": len(train_src),
        "train_pairs_skipped_over_length": skipped,
        "train_target_tokens_per_epoch": int(lengths.sum()),
        "config": config_lib.to_dict(cfg),
    }
    atomic.write_text(run_dir / runs.RESULTS_FILE, json.dumps(results, indent=2))
    return results


def summarize_results(results: dict) -> str:
    """A few lines on a finished translation run, for the terminal.

    Example:
        >>> print(summarize_results(train_translation(cfg, "runs/de-en")))
        validation (1,014 sentences, greedy): sacreBLEU 37.77, chrF 60.12; ...
    """
    return "\n".join(
        [describe_figures(results["validation"]), describe_training(results, "target tokens")]
    )
