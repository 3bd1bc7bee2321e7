"""Training and evaluating `Seq2Seq` translators with `model.fit`, resumable after a kill.

Besides the common files (see `textrnn.training`), a translation run directory holds
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
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn import config as config_lib
from textrnn import pipelines, training
from textrnn.seq2seq import Seq2Seq
from textrnn.special_tokens import BOS_ID, EOS_ID, PAD_ID
from textrnn.subword_tokenizer import WordPieceTokenizer, load_tokenizer
from textrnn.translation import Translator
from textrnn.translation_data import load_translation_splits
from textrnn.translation_metrics import corpus_scores, lowercase_tokenized_bleu

SOURCE_VOCAB_FILE = "source_vocab.txt"
TARGET_VOCAB_FILE = "target_vocab.txt"


@keras.saving.register_keras_serializable(package="textrnn")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Token cross-entropy from logits with label smoothing, averaged over weighted tokens.

    `loss = (1 - e) * -log p(y) + e * mean_v(-log p(v))` per token; with sample weights
    (1 for real tokens, 0 for padding) the mean is over real tokens only.

    Args:
        label_smoothing: `e` in [0, 1).
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32))
        nll = -tf.gather(log_probs, tf.cast(y_true, tf.int32), batch_dims=2)
        if not self.label_smoothing:
            return nll
        uniform = -tf.reduce_mean(log_probs, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


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


def learn_tokenizers(data: config_lib.TranslationDataConfig, train):
    """Source and target WordPiece tokenisers learned from the training split."""
    common = {"lowercase": data.lowercase, "split_punctuation": False}
    return (
        WordPieceTokenizer.learn(train.sources, data.source_vocab_size, **common),
        WordPieceTokenizer.learn(train.targets, data.target_vocab_size, **common),
    )


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


def make_translator(
    model, tokenizers, cfg: config_lib.TranslationConfig, jit_compile: bool = False
) -> Translator:
    """The `Translator` of a run (its tokenisers and `[translate]` defaults); with
    `jit_compile`, its decoding loop is XLA-compiled (see `Translator`)."""
    return Translator(model, tokenizers[0], tokenizers[1], cfg.translate, jit_compile=jit_compile)


def load_translation_run(run_dir):
    """Loads `(model, (source_tokenizer, target_tokenizer), config)` from a run directory.

    Raises:
        FileNotFoundError: the model or a vocabulary file is missing.
        VocabularyError: a vocabulary does not match the model.
    """
    from textrnn.subword_tokenizer import VocabularyError

    run_dir = Path(run_dir)
    tokenizers = []
    for name in (SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name} not found: is {run_dir} a finished training run?"
            )
        tokenizers.append(load_tokenizer(run_dir / name))
    model_path = run_dir / training.MODEL_FILE
    model = training.load_keras_model(model_path)
    sizes = (model.source_vocab_size, model.target_vocab_size)
    for name, tok, size in zip((SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE), tokenizers, sizes):
        if tok.vocabulary_size() != size:
            raise VocabularyError(
                f"Vocabulary {run_dir / name} has {tok.vocabulary_size()} ids but the model "
                f"in {model_path} was trained with {size}: they do not belong together."
            )
    return model, tuple(tokenizers), training.read_run_config(run_dir)


def build_seq2seq(cfg: config_lib.TranslationConfig, tokenizers) -> Seq2Seq:
    model = Seq2Seq(
        tokenizers[0].vocabulary_size(),
        tokenizers[1].vocabulary_size(),
        **config_lib.to_dict(cfg.model),
    )
    model.build()
    return model


def load_splits(cfg: config_lib.TranslationConfig):
    return load_translation_splits(
        cfg.data.dataset,
        cfg.data.source_language,
        cfg.data.target_language,
        seed=cfg.data.split_seed,
    )


def evaluate_translation(
    model, tokenizers, cfg, split="test", splits=None, jit_compile=False, **options
):
    """Translates a split and scores it against its raw references.

    Args:
        model: a `Seq2Seq`.
        tokenizers: `(source_tokenizer, target_tokenizer)`.
        cfg: the run's `TranslationConfig`.
        split: `"train"`, `"validation"` or `"test"`.
        splits: already loaded splits (default: load the recipe's dataset).
        jit_compile: XLA-compile the decoding loop (see `Translator`).
        **options: decoding options of `Translator.translate_texts` (`strategy`,
            `beam_width`, `alpha`, ...).

    Returns:
        `(figures, hypotheses)`: sacreBLEU BLEU and chrF with signatures, the lowercased
        tokenised BLEU (with its nltk cross-check), decoding options and timing; and the
        translations, one per source sentence.
    """
    import time

    splits = splits or load_splits(cfg)
    if split not in splits:
        raise ValueError(f"Unknown split {split!r}; this dataset has {sorted(splits)}.")
    pairs = splits[split]
    translator = make_translator(model, tokenizers, cfg, jit_compile=jit_compile)
    start = time.perf_counter()
    results = translator.translate_texts(pairs.sources, warn=False, **options)
    seconds = time.perf_counter() - start
    hypotheses = [r["translation"] for r in results]
    scores = corpus_scores(hypotheses, pairs.targets)
    lowercase = lowercase_tokenized_bleu(hypotheses, pairs.targets)
    figures = {
        "split": split,
        "sentences": len(pairs),
        "decoding": dict(options),
        "bleu": round(scores["bleu"], 2),
        "chrf": round(scores["chrf"], 2),
        "bleu_signature": scores["bleu_signature"],
        "chrf_signature": scores["chrf_signature"],
        "lowercase_tokenized_bleu": round(lowercase["bleu"], 2),
        "lowercase_tokenized_bleu_nltk": round(lowercase["nltk_bleu"], 2),
        "lowercase_tokenized_protocol": lowercase["protocol"],
        "decode_seconds": round(seconds, 1),
        "sentences_per_second": round(len(pairs) / seconds, 1),
    }
    return figures, hypotheses


def train_translation(cfg: config_lib.TranslationConfig, run_dir, *, resume=False, verbose=1):
    """Trains a `Seq2Seq` from a recipe; safe to kill and `resume`.

    Args:
        cfg: a `TranslationConfig` (see `textrnn.config.load_config`).
        run_dir: the run directory (layout in `textrnn.training`).
        resume: continue the run in `run_dir` from its last completed epoch.
        verbose: Keras progress-bar verbosity.

    Returns:
        The results dict also written to `run_dir/results.json` (validation BLEU and chrF
        with greedy decoding, training time, target tokens/s, pairs left out).

    Example:
        >>> cfg = load_config("models/translate-multi30k-de-en/config.toml")
        >>> train_translation(cfg, "runs/de-en")["validation"]["bleu"]
    """
    run_dir = Path(run_dir)
    data = cfg.data
    splits = load_splits(cfg)  # fails before touching run_dir
    training.prepare_run_dir(run_dir, cfg, resume)
    keras.utils.set_random_seed(cfg.train.seed)
    paths = (run_dir / SOURCE_VOCAB_FILE, run_dir / TARGET_VOCAB_FILE)
    if resume and all(p.exists() for p in paths):
        tokenizers = tuple(load_tokenizer(p) for p in paths)
    else:
        tokenizers = learn_tokenizers(data, splits["train"])
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
        optimizer=training.make_optimizer(cfg.train, cfg.train.epochs * steps_per_epoch),
        loss=SmoothedCrossEntropy(cfg.train.label_smoothing),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    )
    progress = training.TrainingProgress(
        run_dir / training.PROGRESS_FILE,
        float(lengths.sum()) / steps,
        cfg.train.max_minutes,
        monitor=monitor,
        mode=mode,
    )
    training.fit_resumable(
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
    model.save(run_dir / training.MODEL_FILE)

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
    (run_dir / training.RESULTS_FILE).write_text(json.dumps(results, indent=2))
    return results
