"""Text generation from a `CharLM`: raw strings in, raw strings out, in the graph.

`CharGenerator` holds a model and its tokeniser and exposes one `tf.function` per
decoding strategy. The Python API, the command line and the exported SavedModel all
call these same functions, so they produce the same text for the same inputs.

Documented behaviour for awkward prompts:
- an empty prompt is replaced by a newline (generation starts at the beginning of a line);
- characters the model never saw map to `<unk>` (the Python API warns about them);
- bytes that are not valid UTF-8 are an error in the Python API; inside the graph they
  become U+FFFD, i.e. `<unk>`;
- generation never emits special ids (`<pad>`, `<unk>`, `<s>`, `</s>`): their logits
  are masked, and scores are log-probabilities over the real characters;
- prompts of any length are processed in one pass (the recurrent state carries all of
  the prompt, however long; there is no window limit).
"""

from __future__ import annotations

import warnings
import weakref

import tensorflow as tf

from textrnn import decoding
from textrnn.decoding.strategies import check_int
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
    ):
        super().__init__(name=name or "char_generator")
        check_int("capacity", capacity, 1)
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

    def _run(self, prompts, strategy, max_length):
        prompts = tf.where(tf.strings.length(prompts) > 0, prompts, EMPTY_PROMPT_REPLACEMENT)
        ids = self.tokenizer.encode(prompts)
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
        result = loop(state, start_ids, max_length)
        best = result.ids[:, 0, : tf.maximum(max_length, 1)]
        continuation = self.tokenizer.decode(
            tf.RaggedTensor.from_tensor(best, lengths=result.lengths[:, 0])
        )
        return {
            "text": tf.strings.join([prompts, continuation]),
            "continuation": continuation,
            "ids": best,
            "score": result.scores[:, 0],
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def greedy(self, prompts, max_length):
        """Greedy continuation of each prompt by `max_length` characters."""
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
        return self._run(prompts, self.beam_strategy, max_length)


_GENERATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached_generator(model, tokenizer, beam_width, jit_compile=False, capacity=DEFAULT_CAPACITY):
    """One `CharGenerator` per (model, tokenizer, beam width, XLA, capacity), so repeated
    calls reuse the traced (and compiled) graphs instead of building them again."""
    per_model = _GENERATORS.setdefault(model, {})
    key = (id(tokenizer), beam_width, jit_compile, capacity)
    if key not in per_model or per_model[key].tokenizer is not tokenizer:
        per_model[key] = CharGenerator(
            model, tokenizer, beam_width=beam_width, jit_compile=jit_compile, capacity=capacity
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
):
    """Generates text from Python strings.

    Args:
        model: a `CharLM`.
        tokenizer: its `CharTokenizer`.
        prompts: a string (or UTF-8 bytes) or a list of them.
        strategy: `"greedy"`, `"sample"` or `"beam"`.
        max_length: number of characters to generate per prompt.
        temperature, top_k, top_p, seed, repetition_penalty: sampling parameters
            (`strategy="sample"`); a repetition penalty above 1 discourages characters
            already generated (CTRL-style).
        beam_width: beam width (`strategy="beam"`).
        warn_unknown: warn about prompt characters that are not in the vocabulary.
        jit_compile: compile the decoding loop with XLA (see `CharGenerator`): faster,
            and sampling draws other random numbers than without it. The compiled loop
            is cached for lengths up to the next power of two >= `max_length`.

    Returns:
        A list of strings, each the prompt followed by its continuation.

    Raises:
        ValueError: unknown strategy, bad parameter, or a prompt that is not UTF-8.
    """
    single = isinstance(prompts, (str, bytes, bytearray))
    texts = [ensure_text(p) for p in ([prompts] if single else list(prompts))]
    if not texts:
        raise ValueError("Expected at least one prompt. Received an empty list.")
    if not isinstance(max_length, int) or max_length < 0:
        raise ValueError(
            f"Expected a non-negative integer for `max_length`. Received: {max_length!r}"
        )
    if warn_unknown:
        unknown = sorted({c for t in texts for c in tokenizer.unknown_characters(t)})
        if unknown:
            warnings.warn(
                f"Prompt characters not in the model's vocabulary are read as <unk>: {unknown!r}",
                stacklevel=2,
            )
    capacity = max(DEFAULT_CAPACITY, 1 << max(max_length - 1, 0).bit_length())
    generator = _cached_generator(model, tokenizer, beam_width, bool(jit_compile), capacity)
    prompts_t = tf.constant(texts)
    if strategy == "greedy":
        out = generator.greedy(prompts_t, max_length)
    elif strategy == "sample":
        # Validates the values (clear errors) before they enter the graph.
        decoding.Sampling(temperature, top_k, top_p, seed, repetition_penalty)
        out = generator.sample(
            prompts_t,
            max_length,
            float(temperature),
            int(top_k),
            float(top_p),
            int(seed),
            float(repetition_penalty),
        )
    elif strategy == "beam":
        out = generator.beam(prompts_t, max_length)
    else:
        raise ValueError(f"Expected `strategy` in {STRATEGIES}. Received: strategy={strategy!r}")
    return [t.decode("utf-8") for t in out["text"].numpy()]
