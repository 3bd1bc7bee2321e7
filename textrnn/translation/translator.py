"""Translation with a `Seq2Seq`: raw strings in, raw strings out, in the graph.

`Translator` holds a model and its two tokenisers and exposes one `tf.function` per
decoding strategy (greedy, beam search, sampling), all driven by `textrnn.decoding`. The
Python API, the command line, evaluation and the exported SavedModel call these same
functions, so they give the same translations for the same inputs.

Documented behaviour for awkward input:
- an empty (or whitespace-only) source has no tokens: its translation is the empty string
  with score 0 (the model still runs on a placeholder `</s>` so the batch stays valid);
- every row generates at most `min(max_length, ceil(max_length_ratio * source tokens) +
  max_length_offset)` tokens, so a source longer than anything seen in training cannot
  make decoding run away;
- source words outside the vocabulary become `<unk>` (the WordPiece vocabulary covers
  every character seen in training, so only unseen characters do);
- bytes that are not UTF-8 are an error in the Python API and CLI; inside the graph they
  become U+FFFD first;
- the decoder never emits `<pad>`, `<unk>` or `<s>` (their logits are masked; scores are
  log-probabilities over the remaining tokens);
- a source longer than `ExportLimits.max_source_tokens` tokens is cut to its first
  `max_source_tokens` (`source_tokens` shows what was translated; the Python API warns);
- `max_length=0` generates nothing: every translation is the empty string with score 0;
  a `max_length` above `ExportLimits.max_new_tokens` acts as `max_new_tokens` (the
  per-row length caps above bound every row anyway, and the loop's buffers are sized by
  the largest row cap of the batch, never by `max_length` alone);
- every input is checked against `ExportLimits` (batch size, bytes per source,
  `beam_width`, `n_best`), `max_length` to be >= 0 and the decoding parameters against
  their domains (`textrnn.export.input_checks`): an `InvalidArgumentError` in the graph,
  a `ValueError` in the Python API, naming the input, the value and the allowed range;
- an empty batch gives empty outputs.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from textrnn import decoding
from textrnn.decoding.loop_helpers import row_caps
from textrnn.decoding.strategies import check_int
from textrnn.export import input_checks as checks
from textrnn.export.limits import ExportLimits
from textrnn.text.ragged_ops import pick_rows
from textrnn.text.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from textrnn.text.utf8 import ensure_text
from textrnn.translation.config import TranslateConfig

STRATEGIES = ("greedy", "beam", "sample")
# With XLA, sources are padded to a multiple of this many tokens (one compilation per
# multiple instead of one per length).
SOURCE_LENGTH_MULTIPLE = 16


class Translator(tf.Module):
    """Translates batches of source strings with a `Seq2Seq` and the decoding module.

    Args:
        model: a built `Seq2Seq`.
        source_tokenizer: the tokeniser of the source language.
        target_tokenizer: the tokeniser of the target language.
        defaults: a `TranslateConfig`: the length caps and `serving_default`'s decoding.
        jit_compile: compile the decoding loop with XLA (tokenisation and the encoder stay
            in plain TensorFlow). XLA compiles once per batch size, padded source length
            (sources are padded to a multiple of 16 tokens to bound that) and beam width;
            sampling then draws other random numbers for the same seed than without XLA.
            Exports need XLA in the server (TF Serving: `--xla_cpu_compilation_enabled`).
        capacity: with `jit_compile`, the most tokens one translation can have (the
            static length XLA compiles for; default `defaults.max_length`).
        limits: the caps every call is checked against (`ExportLimits()` by default).

    Example:
        >>> translator = Translator(model, source_tok, target_tok, TranslateConfig())
        >>> out = translator.beam(tf.constant(["Ein Hund läuft."]), 5, 1, 0.6, 100)
        >>> out["translation"].numpy()[0].decode()
        'A dog runs.'
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        defaults=None,
        name=None,
        jit_compile=False,
        capacity=None,
        limits: ExportLimits | None = None,
    ):
        super().__init__(name=name or "translator")
        self.limits = limits or ExportLimits()
        for side, tok, size in (
            ("source", source_tokenizer, model.source_vocab_size),
            ("target", target_tokenizer, model.target_vocab_size),
        ):
            if tok.vocabulary_size() != size:
                raise ValueError(
                    f"The {side} tokenizer has {tok.vocabulary_size()} ids but the model "
                    f"expects {size}: they do not belong together."
                )
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.defaults = defaults or TranslateConfig()
        self.jit_compile = bool(jit_compile)
        self.capacity = self.defaults.max_length if capacity is None else capacity
        check_int("capacity", self.capacity, 1)

    # ----------------------------------------------------------------------------------
    # The graph
    # ----------------------------------------------------------------------------------

    def encode_sources(self, sources):
        """Source strings -> `(ids [batch, src_len], lengths [batch], tokens, empty)`, each
        source cut to `limits.max_source_tokens` tokens."""
        sources = tf.strings.unicode_transcode(
            tf.convert_to_tensor(sources, tf.string), "UTF-8", "UTF-8", errors="replace"
        )
        ids = self.source_tokenizer.tokenize(sources)[:, : self.limits.max_source_tokens]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        empty = tf.equal(lengths, 0)
        tokens = self.source_tokenizer.ids_to_tokens(ids).to_tensor("")
        placeholder = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(empty)[0], 1], EOS_ID))
        ids = pick_rows(empty, placeholder, ids)
        return ids.to_tensor(PAD_ID), lengths, tokens, empty

    def domains(self) -> dict:
        """The allowed values of each numeric input of the signatures."""
        return input_domains(self.limits)

    def _checked(self, sources, **scalars):
        """Checks the inputs in the graph (see `textrnn.export.input_checks`); returns them,
        made to wait for the checks."""
        return checks.checked_inputs(
            "sources",
            sources,
            self.limits,
            self.domains(),
            scalars,
            ordered=[("n_best", "beam_width")],
        )

    def _run(self, sources, strategy, max_length):
        rows = tf.shape(sources)[0]
        # The recurrent layers cannot run on zero rows: an empty batch decodes one
        # placeholder (empty) source for no steps, and every output is cut back to `rows`.
        empty_batch = tf.equal(rows, 0)
        sources = tf.concat([sources, tf.fill(tf.cast(empty_batch, tf.int32)[None], "")], 0)
        max_length = tf.where(empty_batch, 0, max_length)
        ids, lengths, source_tokens, empty = self.encode_sources(sources)
        # `max_length=0` asks for nothing: such rows come out like empty sources.
        empty = empty | (max_length <= 0)
        max_length = tf.minimum(max_length, self.limits.max_new_tokens)
        batch = tf.shape(ids)[0]
        source_lengths = tf.maximum(lengths, 1)
        # No row can use more steps than its own cap, so the buffers need no more.
        max_length = tf.reduce_max(
            row_caps(
                batch,
                tf.maximum(max_length, 1),
                source_lengths,
                self.defaults.max_length_ratio,
                self.defaults.max_length_offset,
            )
        )
        if self.jit_compile:
            # Fewer distinct source lengths, fewer XLA compilations; masks hide the padding.
            padded = -(-tf.shape(ids)[1] // SOURCE_LENGTH_MULTIPLE) * SOURCE_LENGTH_MULTIPLE
            ids = tf.pad(ids, [[0, 0], [0, padded - tf.shape(ids)[1]]], constant_values=PAD_ID)
        context, state = self.model.encode(ids)

        def loop(state, context, source_lengths, max_length):
            return decoding.decode(
                self.model.step,
                state,
                tf.fill([tf.shape(source_lengths)[0]], BOS_ID),
                strategy,
                max_length,
                end_ids=(EOS_ID,),
                forbidden_ids=(PAD_ID, UNK_ID, BOS_ID),  # scores: over real target tokens
                context=context,
                source_lengths=source_lengths,
                max_length_ratio=self.defaults.max_length_ratio,
                max_length_offset=self.defaults.max_length_offset,
                capacity=self.capacity if self.jit_compile else None,
            )

        if self.jit_compile:
            loop = tf.function(loop, jit_compile=True)
        result = loop(state, context, source_lengths, max_length)
        n = tf.shape(result.ids)[1]
        flat = tf.reshape(result.ids, tf.stack([batch * n, -1]))
        texts = tf.reshape(self.target_tokenizer.detokenize(flat), tf.stack([batch, n]))
        texts = tf.where(empty[:, None], "", texts)
        scores = tf.where(empty[:, None], 0.0, result.scores)
        normalized = tf.where(empty[:, None], 0.0, result.normalized_scores)
        best = result.ids[:, 0]
        best_length = tf.where(empty, 0, result.lengths[:, 0])
        target_tokens = self.target_tokenizer.ids_to_tokens(
            tf.RaggedTensor.from_tensor(best, lengths=best_length)
        ).to_tensor("")
        attention = result.attention[:, 0]
        outputs = {
            "translation": texts[:, 0],
            "score": scores[:, 0],
            "normalized_score": normalized[:, 0],
            "n_best": texts,
            "n_best_scores": normalized,
            "source_tokens": source_tokens,
            "target_tokens": target_tokens,
            "attention": attention[:, : tf.shape(target_tokens)[1], : tf.shape(source_tokens)[1]],
        }
        return {name: value[:rows] for name, value in outputs.items()}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="sources"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def greedy(self, sources, max_length):
        """Greedy translations (at most `max_length` tokens each, see the length caps)."""
        sources, max_length = self._checked(sources, max_length=max_length)
        return self._run(sources, decoding.Greedy(), max_length)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="sources"),
            tf.TensorSpec([], tf.int32, name="beam_width"),
            tf.TensorSpec([], tf.int32, name="n_best"),
            tf.TensorSpec([], tf.float32, name="alpha"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def beam(self, sources, beam_width, n_best, alpha, max_length):
        """Beam search with the GNMT length penalty `alpha`; returns the `n_best` list.

        A hypothesis reaching its length cap is treated as `defaults.capped` says."""
        sources, beam_width, n_best, alpha, max_length = self._checked(
            sources, beam_width=beam_width, n_best=n_best, alpha=alpha, max_length=max_length
        )
        strategy = decoding.BeamSearch(
            width=beam_width,
            n_best=n_best,
            length_penalty="gnmt",
            alpha=alpha,
            capped=self.defaults.capped,
        )
        return self._run(sources, strategy, max_length)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="sources"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]
    )
    def sample(self, sources, max_length, temperature, top_k, top_p, seed):
        """Sampled translations (temperature, top-k, top-p; reproducible with `seed`)."""
        sources, max_length, temperature, top_k, top_p, seed = self._checked(
            sources,
            max_length=max_length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        strategy = decoding.Sampling(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return self._run(sources, strategy, max_length)

    # ----------------------------------------------------------------------------------
    # Python API
    # ----------------------------------------------------------------------------------

    def run_strategy(
        self,
        sources,
        strategy="beam",
        *,
        beam_width=5,
        n_best=1,
        alpha=0.6,
        max_length=200,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        seed=0,
    ):
        """Calls the graph function of `strategy` on a batch of strings (tensors out).

        Raises:
            ValueError: an unknown strategy or a parameter outside its range or the
                translator's `limits` (with the message the graph would give).
        """
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Expected `strategy` in {STRATEGIES}. Received: strategy={strategy!r}"
            )
        domains = self.domains()
        given = {"max_length": max_length}
        if strategy == "beam":
            given.update(beam_width=beam_width, n_best=n_best, alpha=alpha)
        if strategy == "sample":
            given.update(temperature=temperature, top_k=top_k, top_p=top_p)
        for name, value in given.items():
            checks.check_value(name, value, domains[name], integer=name in _INTEGER_INPUTS)
        sources = tf.constant(sources, tf.string)
        if strategy == "greedy":
            return self.greedy(sources, max_length)
        if strategy == "beam":
            decoding.BeamSearch(width=beam_width, n_best=n_best, alpha=float(alpha))  # checks
            return self.beam(sources, beam_width, n_best, float(alpha), max_length)
        decoding.Sampling(temperature, top_k, top_p, seed)  # checks
        return self.sample(sources, max_length, float(temperature), top_k, float(top_p), seed)

    def translate_texts(self, texts, strategy="beam", *, batch_size=64, warn=True, **options):
        """Translates Python strings, batching them by length.

        Args:
            texts: a string (or UTF-8 bytes) or a list of them.
            strategy: `"greedy"`, `"beam"` or `"sample"`.
            batch_size: sentences per graph call (at most `limits.max_batch_size`).
            warn: warn about empty sources and sources cut to
                `limits.max_source_tokens`.
            **options: `beam_width`, `n_best`, `alpha`, `max_length`, `temperature`,
                `top_k`, `top_p`, `seed` (see `run_strategy`).

        Returns:
            One dict per text: `translation`, `score` (sum of log-probabilities),
            `normalized_score`, `n_best` and `n_best_scores` (lists, best first),
            `source_tokens`, `target_tokens` and `attention` (`[target, source]` numpy).

        Raises:
            ValueError: no texts, bytes that are not UTF-8, a source longer than
                `limits.max_input_bytes`, or a bad option.
        """
        single = isinstance(texts, (str, bytes, bytearray))
        texts = [ensure_text(t) for t in ([texts] if single else list(texts))]
        if not texts:
            raise ValueError("Expected at least one source sentence. Received an empty list.")
        checks.check_text_bytes(texts, self.limits.max_input_bytes, "source")
        batch_size = min(batch_size, self.limits.max_batch_size)
        blank = [i for i, t in enumerate(texts) if not t.strip()]
        if warn and blank:
            warnings.warn(f"Sources {blank} are empty: each translates to ''.", stacklevel=2)
        order = np.argsort([len(t) for t in texts], kind="stable")
        results = [None] * len(texts)
        for start in range(0, len(texts), batch_size):
            chunk = order[start : start + batch_size]
            out = self.run_strategy([texts[i] for i in chunk], strategy, **options)
            out = {k: v.numpy() for k, v in out.items()}
            for j, i in enumerate(chunk):
                src = [t.decode() for t in out["source_tokens"][j] if t]
                tgt = [t.decode() for t in out["target_tokens"][j] if t]
                results[i] = {
                    "translation": out["translation"][j].decode("utf-8"),
                    "score": float(out["score"][j]),
                    "normalized_score": float(out["normalized_score"][j]),
                    "n_best": [t.decode("utf-8") for t in out["n_best"][j]],
                    "n_best_scores": [float(s) for s in out["n_best_scores"][j]],
                    "source_tokens": src,
                    "target_tokens": tgt,
                    "attention": out["attention"][j][: len(tgt), : len(src)],
                }
        if warn:
            self._warn_cut_sources(texts, results)
        return results

    def _warn_cut_sources(self, texts, results):
        cap = self.limits.max_source_tokens
        at_cap = [i for i, r in enumerate(results) if len(r["source_tokens"]) == cap]
        if not at_cap:
            return
        full = self.source_tokenizer.tokenize(tf.constant([texts[i] for i in at_cap]))
        cut = [i for i, n in zip(at_cap, full.row_lengths().numpy()) if n > cap]
        if cut:
            warnings.warn(
                f"Sources {cut} have more than {cap} tokens: only their first {cap} are "
                "translated (ExportLimits.max_source_tokens).",
                stacklevel=3,
            )


_INTEGER_INPUTS = ("max_length", "beam_width", "n_best", "top_k", "seed")


def input_domains(limits: ExportLimits) -> dict:
    """The allowed values of each numeric input of `Translator`'s signatures (`n_best` is
    also at most `beam_width`; a `max_length` above `limits.max_new_tokens` acts as it)."""
    return {
        "max_length": checks.Interval(0, 2**31 - 1),
        "beam_width": checks.Interval(1, limits.max_beam_width),
        "n_best": checks.Interval(1, limits.max_n_best),
        "alpha": checks.ALPHA,
        "temperature": checks.TEMPERATURE,
        "top_k": checks.TOP_K,
        "top_p": checks.TOP_P,
        "seed": checks.Interval(),
    }


def make_translator(
    model, tokenizers, cfg, jit_compile: bool = False, limits: ExportLimits | None = None
) -> Translator:
    """The `Translator` of a run (its tokenisers and `[translate]` defaults); with
    `jit_compile`, its decoding loop is XLA-compiled (see `Translator`).

    Args:
        model: the run's `Seq2Seq`.
        tokenizers: `(source_tokenizer, target_tokenizer)`.
        cfg: the run's `TranslationConfig`.
        jit_compile: XLA-compile the decoding loop.
        limits: the caps every call is checked against (`ExportLimits()` by default).

    Example:
        >>> translator = make_translator(*load_run("runs/de-en"))
    """
    return Translator(
        model,
        tokenizers[0],
        tokenizers[1],
        cfg.translate,
        jit_compile=jit_compile,
        limits=limits,
    )
