"""Text generation from a `CharLM`: raw strings in, raw strings out, in the graph.

`CharGenerator` holds a model and its tokeniser and exposes one `tf.function` per
decoding strategy. The Python API, the command line and the exported SavedModel all
call these same functions, so they produce the same text for the same inputs.

Documented behaviour for awkward prompts:
- an empty prompt is replaced by a newline (generation starts at the beginning of a line);
- characters the model never saw map to `<unk>` (the Python API warns about them);
- bytes that are not valid UTF-8 are an error in the Python API; inside the graph they
  become U+FFFD, i.e. `<unk>` (and U+FFFD in the echoed `text`, which is always UTF-8);
- generation never emits special ids (`<pad>`, `<unk>`, `<s>`, `</s>`): their logits
  are masked, and scores are log-probabilities over the real characters;
- a prompt is processed in one pass (the recurrent state carries all of it; there is
  no window limit) up to `ExportLimits.max_prompt_chars` characters: a longer one is read
  by its last `max_prompt_chars` characters (the Python API warns);
- `max_length=0` generates nothing: the text is the prompt, the score 0;
- every input is checked against `ExportLimits` (batch size, bytes per prompt,
  `max_length`, beam width) and the sampling parameters against their domains
  (`textrnn.export.input_checks`): an `InvalidArgumentError` in the graph, a
  `ValueError` in the Python API, naming the input, the value and the allowed range;
- an empty batch gives empty outputs.
"""

from __future__ import annotations

import warnings
import weakref

import tensorflow as tf

from textrnn import decoding
from textrnn.decoding.strategies import check_int
from textrnn.export import input_checks as checks
from textrnn.export.limits import ExportLimits
from textrnn.text.char_tokenizer import CharTokenizer
from textrnn.text.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from textrnn.text.utf8 import ensure_text

EMPTY_PROMPT_REPLACEMENT = "\n"
# The static length an XLA-compiled generator is built for (`CharGenerator(capacity=)`).
DEFAULT_CAPACITY = 2048
STRATEGIES = ("greedy", "sample", "beam")


class CharGenerator(tf.Module):
    """Generates continuations of prompts with a character language model.

    Args:
        model: a built `CharLM`.
        tokenizer: the `CharTokenizer` the model was trained with.
        beam_width: beam width of the `beam` function (fixed, because it sets shapes).
        length_penalty: beam length penalty (`"gnmt"`, `"average"` or `"none"`).
        alpha: GNMT length-penalty exponent.
        jit_compile: compile the decoding loop with XLA (the tokenisation around it stays
            in plain TensorFlow, which XLA cannot compile). Several times faster at small
            batches on CPU; sampling then draws other random numbers for the same seed
            than without XLA (still reproducible, and the same in an export made with
            XLA). Exports need XLA in the server (TF Serving:
            `--xla_cpu_compilation_enabled=true`).
        capacity: with `jit_compile`, the most characters one call can generate (the
            static length XLA compiles for; a larger `max_length` acts as `capacity`).
        limits: the caps every call is checked against (`ExportLimits()` by default).

    Raises:
        ValueError: a model and tokeniser that do not belong together, or a beam width
            above `limits.max_beam_width`.

    Example:
        >>> gen = CharGenerator(model, tokenizer)
        >>> out = gen.sample(tf.constant(["ROMEO:"]), 100, 0.8, 0, 1.0, 7)
        >>> out["text"].shape
        TensorShape([1])
    """

    def __init__(
        self,
        model,
        tokenizer: CharTokenizer,
        beam_width=5,
        length_penalty="none",
        alpha=0.6,
        jit_compile=False,
        capacity=DEFAULT_CAPACITY,
        name=None,
        limits: ExportLimits | None = None,
    ):
        super().__init__(name=name or "char_generator")
        check_int("capacity", capacity, 1)
        self.limits = limits or ExportLimits()
        checks.check_value(
            "beam_width", beam_width, checks.Interval(1, self.limits.max_beam_width), integer=True
        )
        if model.vocab_size != tokenizer.vocab_size:
            raise ValueError(
                f"Tokenizer has {tokenizer.vocab_size} ids but the model expects "
                f"{model.vocab_size}: they do not belong together."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.beam_strategy = decoding.BeamSearch(
            width=beam_width, n_best=1, length_penalty=length_penalty, alpha=alpha
        )
        self.jit_compile = bool(jit_compile)
        self.capacity = capacity

    def _decoding_step(self):
        """The model's one-step function (its faster decoding variant where it has one)."""
        return getattr(self.model, "decoding_step", lambda: self.model.step)()

    def domains(self) -> dict:
        """The allowed values of each numeric input of the signatures."""
        return input_domains(self.limits)

    def _checked(self, prompts, **scalars):
        """Checks the inputs in the graph (see `textrnn.export.input_checks`); returns them,
        made to wait for the checks."""
        return checks.checked_inputs("prompts", prompts, self.limits, self.domains(), scalars)

    def _run(self, prompts, strategy, max_length):
        rows = tf.shape(prompts)[0]
        # An empty batch decodes one placeholder row for no steps, so that every output
        # keeps its rank (the recurrent layers cannot run on zero rows).
        empty_batch = tf.equal(rows, 0)
        prompts = tf.concat([prompts, tf.fill(tf.cast(empty_batch, tf.int32)[None], "")], 0)
        max_length = tf.where(empty_batch, 0, max_length)
        prompts = tf.strings.unicode_transcode(prompts, "UTF-8", "UTF-8", errors="replace")
        prompts = tf.where(tf.strings.length(prompts) > 0, prompts, EMPTY_PROMPT_REPLACEMENT)
        ids = self.tokenizer.encode(prompts)[:, -self.limits.max_prompt_chars :]
        start_ids, state = self.model.prime(ids.to_tensor(PAD_ID), ids.row_lengths())
        step = self._decoding_step()

        def loop(state, start_ids, max_length):
            return decoding.decode(
                step,
                state,
                start_ids,
                strategy,
                max_length,
                end_ids=(),
                # Special ids are never characters: scores are log-probabilities over real
                # characters only.
                forbidden_ids=(PAD_ID, UNK_ID, BOS_ID, EOS_ID),
                capacity=self.capacity if self.jit_compile else None,
            )

        if self.jit_compile:
            loop = tf.function(loop, jit_compile=True)
            max_length = tf.minimum(max_length, self.capacity)
        # The loop always runs at least one step; `max_length=0` then keeps none of it.
        result = loop(state, start_ids, tf.maximum(max_length, 1))
        best = result.ids[:, 0, :max_length]
        lengths = tf.minimum(result.lengths[:, 0], max_length)
        continuation = self.tokenizer.decode(tf.RaggedTensor.from_tensor(best, lengths=lengths))
        score = tf.where(max_length > 0, result.scores[:, 0], 0.0)
        return {
            "text": tf.strings.join([prompts, continuation])[:rows],
            "continuation": continuation[:rows],
            "ids": best[:rows],
            "score": score[:rows],
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def greedy(self, prompts, max_length):
        """Greedy continuation of each prompt by `max_length` characters."""
        prompts, max_length = self._checked(prompts, max_length=max_length)
        return self._run(prompts, decoding.Greedy(), max_length)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="max_length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int32, name="seed"),
            tf.TensorSpec([], tf.float32, name="repetition_penalty"),
        ]
    )
    def sample(self, prompts, max_length, temperature, top_k, top_p, seed, repetition_penalty):
        """Sampled continuation (temperature, top-k, top-p, repetition penalty; reproducible
        with `seed`)."""
        prompts, max_length, temperature, top_k, top_p, seed, repetition_penalty = self._checked(
            prompts,
            max_length=max_length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            repetition_penalty=repetition_penalty,
        )
        strategy = decoding.Sampling(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            repetition_penalty=repetition_penalty,
        )
        return self._run(prompts, strategy, max_length)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def beam(self, prompts, max_length):
        """Beam-search continuation (the generator's fixed beam width)."""
        prompts, max_length = self._checked(prompts, max_length=max_length)
        return self._run(prompts, self.beam_strategy, max_length)


def input_domains(limits: ExportLimits) -> dict:
    """The allowed values of each numeric input of `CharGenerator`'s signatures."""
    return {
        "max_length": checks.Interval(0, limits.max_new_tokens),
        "temperature": checks.TEMPERATURE,
        "top_k": checks.TOP_K,
        "top_p": checks.TOP_P,
        "seed": checks.Interval(),
        "repetition_penalty": checks.REPETITION_PENALTY,
    }


_GENERATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached_generator(
    model, tokenizer, beam_width, jit_compile=False, capacity=DEFAULT_CAPACITY, limits=None
):
    """One `CharGenerator` per (model, tokenizer, beam width, XLA, capacity, limits), so
    repeated calls reuse the traced (and compiled) graphs instead of building them again."""
    limits = limits or ExportLimits()
    per_model = _GENERATORS.setdefault(model, {})
    key = (id(tokenizer), beam_width, jit_compile, capacity, limits)
    if key not in per_model or per_model[key].tokenizer is not tokenizer:
        per_model[key] = CharGenerator(
            model,
            tokenizer,
            beam_width=beam_width,
            jit_compile=jit_compile,
            capacity=capacity,
            limits=limits,
        )
    return per_model[key]


def generate(
    model,
    tokenizer,
    prompts,
    strategy="sample",
    max_length=200,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    beam_width=5,
    repetition_penalty=1.0,
    warn_unknown=True,
    jit_compile=False,
    limits: ExportLimits | None = None,
):
    """Generates text from Python strings.

    Args:
        model: a `CharLM`.
        tokenizer: its `CharTokenizer`.
        prompts: a string (or UTF-8 bytes) or a list of them (split into batches of
            `limits.max_batch_size`; sampled draws depend on a row's place in its batch).
        strategy: `"greedy"`, `"sample"` or `"beam"`.
        max_length: number of characters to generate per prompt, from 0 (nothing: the
            prompt comes back) to `limits.max_new_tokens`.
        temperature, top_k, top_p, seed, repetition_penalty: sampling parameters
            (`strategy="sample"`); a repetition penalty above 1 discourages characters
            already generated (CTRL-style). Allowed values: see
            `textrnn.export.input_checks` (e.g. `top_p` in (0, 1]).
        beam_width: beam width (`strategy="beam"`), at most `limits.max_beam_width`.
        warn_unknown: warn about prompt characters that are not in the vocabulary.
        jit_compile: compile the decoding loop with XLA (see `CharGenerator`): faster,
            and sampling draws other random numbers than without it. The compiled loop
            is cached for lengths up to the next power of two >= `max_length`.
        limits: the caps (`ExportLimits()` by default, the same as an export's).

    Returns:
        A list of strings, each the prompt followed by its continuation.

    Raises:
        ValueError: unknown strategy, a parameter out of range (naming it, its value and
            the allowed range), or a prompt that is not UTF-8 or longer than
            `limits.max_input_bytes`.

    Example:
        >>> generate(model, tokenizer, ["ROMEO:", "JULIET:"], strategy="greedy", max_length=20)
        ['ROMEO: ...', 'JULIET: ...']
    """
    limits = limits or ExportLimits()
    single = isinstance(prompts, (str, bytes, bytearray))
    texts = [ensure_text(p) for p in ([prompts] if single else list(prompts))]
    if not texts:
        raise ValueError("Expected at least one prompt. Received an empty list.")
    if strategy not in STRATEGIES:
        raise ValueError(f"Expected `strategy` in {STRATEGIES}. Received: strategy={strategy!r}")
    _check_prompts(texts, limits, tokenizer, warn_unknown)
    domains = input_domains(limits)
    checks.check_value("max_length", max_length, domains["max_length"], integer=True)
    capacity = max(DEFAULT_CAPACITY, 1 << max(max_length - 1, 0).bit_length())
    if strategy != "beam":  # the width then plays no part; keep the default valid
        beam_width = min(beam_width, limits.max_beam_width)
    generator = _cached_generator(model, tokenizer, beam_width, bool(jit_compile), capacity, limits)
    if strategy == "sample":
        # The graph's rules, with Python errors, before anything enters the graph.
        for name, value, integer in (
            ("temperature", temperature, False),
            ("top_k", top_k, True),
            ("top_p", top_p, False),
            ("repetition_penalty", repetition_penalty, False),
        ):
            checks.check_value(name, value, domains[name], integer=integer)
        decoding.Sampling(temperature, top_k, top_p, seed, repetition_penalty)
    results = []
    for start in range(0, len(texts), limits.max_batch_size):
        prompts_t = tf.constant(texts[start : start + limits.max_batch_size])
        if strategy == "greedy":
            out = generator.greedy(prompts_t, max_length)
        elif strategy == "sample":
            out = generator.sample(
                prompts_t,
                max_length,
                float(temperature),
                int(top_k),
                float(top_p),
                int(seed),
                float(repetition_penalty),
            )
        else:
            out = generator.beam(prompts_t, max_length)
        results.extend(t.decode("utf-8") for t in out["text"].numpy())
    return results


def _check_prompts(texts, limits, tokenizer, warn_unknown):
    """Python-side prompt checks: byte length (error), over-long prompts and (with
    `warn_unknown`) unknown characters (warnings)."""
    checks.check_text_bytes(texts, limits.max_input_bytes, "prompt")
    unknown = sorted({c for t in texts for c in tokenizer.unknown_characters(t)})
    if warn_unknown and unknown:
        warnings.warn(
            f"Prompt characters not in the model's vocabulary are read as <unk>: {unknown!r}",
            stacklevel=3,
        )
    long = [i for i, t in enumerate(texts) if len(t) > limits.max_prompt_chars]
    if long:
        warnings.warn(
            f"Prompts {long} are longer than {limits.max_prompt_chars} characters: the model "
            "reads their last ones only (ExportLimits.max_prompt_chars).",
            stacklevel=3,
        )
