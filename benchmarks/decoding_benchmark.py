"""Decoding throughput: `textrnn.decoding` vs. a Python loop vs. `keras_hub.samplers`.

One randomly initialised model (a `textrnn.charlm.model.CharLM` LSTM, 1 layer, 512 units,
vocabulary 68; a plain Keras `LSTMCell` of the same size if `CharLM` is missing) is
driven several ways, all wrapped in `tf.function`, all through the same one-step
function (`CharLM.decoding_step()`, the step textrnn's generator uses):

- `textrnn`: `decode()` (one `tf.while_loop` in the graph);
- `textrnn+xla`: the same with `jit_compile=True`;
- `API` and `API+xla`: what a user of the library runs, strings in and strings out:
  `textrnn.charlm.generator.CharGenerator` (`jit_compile=False` / `True`), which is also
  what `textrnn generate [--xla]` and `textrnn export [--xla]` run; the prompt is one
  character, so the figures are decoding plus tokenisation and detokenisation;
- `python loop`: the TF text-generation tutorial pattern, one `tf.function` call per
  token from Python (`OneStep`); its beam search does the top-k in NumPy per step;
- `keras_hub`: `keras_hub.samplers.RandomSampler` / `BeamSampler` (KerasHub 0.32) over a
  `next(prompt, cache, index)` closure, when KerasHub can be loaded from a private
  `pip install --no-deps --target DIR keras-hub` (see `--keras-hub-dir`);
- `keras_hub+xla`: the same with `jit_compile=True` (as KerasHub's own `generate()` does
  on the TensorFlow backend);

Floors: the batch-1 tokens/s of the model step alone and of its recurrent matmul alone,
and the steps/s of the model step at batch 5 (a batch-1 beam's rows), each in one
XLA-compiled loop with no decoding logic: no decoder can beat them here.

Figures: sampling tokens/s (batch 1 and 64, `--tokens` tokens per row, no end token) and
beam search (width 5) sequences/s (batch 1 and 64, `--beam-length` tokens each). Each
figure is the median of `--repeats` timed runs after one warm-up run (tracing and
compilation excluded). The contenders of a row take turns (round robin: one timed run of
each, `--repeats` times), so a slow spell of the machine hits all of them alike. These are
CPU wall-clock figures: other processes on the machine change them, so compare columns of
one run, not runs.

Usage:
    python benchmarks/decoding_benchmark.py --out runs/decoding_benchmark.json
    python benchmarks/decoding_benchmark.py --quick      # a smoke run, tiny sizes
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import types

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recording

REPO = recording.REPO
RESULTS = REPO / "benchmarks" / "results" / "decoding.json"

from textrnn.decoding import BeamSearch, Sampling, decode
from textrnn.text.special_tokens import BOS_ID

# Every contender builds fresh tf.functions on purpose; the retracing warning is noise here.
tf.get_logger().setLevel("ERROR")

VOCAB, UNITS, EMBEDDING = 68, 512, 64
WIDTH = 5


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------


class KerasLSTMStep:
    """Fallback when `textrnn.charlm.model` is absent: embedding -> LSTMCell -> dense."""

    def __init__(self, vocab_size, units, embedding_dim):
        import keras

        self.units = units
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
        self.cell = keras.layers.LSTMCell(units)
        self.projection = keras.layers.Dense(vocab_size)
        self.embedding.build((None,))
        self.cell.build((None, embedding_dim))
        self.projection.build((None, units))

    def initial_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.units])
        return ((zeros, zeros),)

    def step(self, token_ids, state, context=None):
        out, (h, c) = self.cell(self.embedding(token_ids), list(state[0]))
        return self.projection(out), ((h, c),)


def build_model():
    try:
        from textrnn.charlm.model import CharLM
    except ImportError as error:
        print(f"textrnn.charlm.model unavailable ({error}); using a plain Keras LSTMCell step.")
        return KerasLSTMStep(VOCAB, UNITS, EMBEDDING), "keras.layers.LSTMCell"
    model = CharLM(vocab_size=VOCAB, cell="lstm", units=UNITS, embedding_dim=EMBEDDING)
    model.build()
    return model, "textrnn.charlm.model.CharLM"


# ----------------------------------------------------------------------------------------
# The contenders: each `make_*` returns a zero-argument callable that runs one decode
# ----------------------------------------------------------------------------------------


def make_textrnn(model, batch, length, beam, jit):
    start = tf.fill([batch], BOS_ID)
    state = model.initial_state(batch)
    strategy = BeamSearch(WIDTH, length_penalty="none") if beam else Sampling(seed=1)

    @tf.function(jit_compile=jit)
    def run(start, state):
        return decode(model.step, state, start, strategy, length, end_ids=()).ids

    return lambda: run(start, state).numpy()


def make_api(model, batch, length, beam, jit):
    from textrnn.charlm.generator import CharGenerator
    from textrnn.text.char_tokenizer import CharTokenizer
    from textrnn.text.special_tokens import NUM_SPECIAL

    characters = [chr(c) for c in range(33, 33 + VOCAB - NUM_SPECIAL)]
    generator = CharGenerator(
        model, CharTokenizer(characters), beam_width=WIDTH, jit_compile=jit, capacity=length
    )
    prompts = tf.constant(["a"] * batch)
    if beam:
        return lambda: generator.beam(prompts, length)["text"].numpy()
    args = (length, 1.0, 0, 1.0, 1, 1.0)
    return lambda: generator.sample(prompts, *args)["text"].numpy()


def make_python_loop(model, batch, length, beam):
    if beam:
        return make_python_beam(model, batch, length)
    start = tf.fill([batch], BOS_ID)
    state = model.initial_state(batch)

    @tf.function
    def one_step(ids, state):
        logits, state = model.step(ids, state)
        next_ids = tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]
        return next_ids, state

    def run():
        ids, st, out = start, state, []
        for _ in range(length):
            ids, st = one_step(ids, st)
            out.append(ids)
        return tf.stack(out, 1).numpy()

    return run


def make_python_beam(model, batch, length):
    state = tf.nest.map_structure(lambda s: tf.repeat(s, WIDTH, 0), model.initial_state(batch))

    @tf.function
    def step(ids, state, parents):
        state = tf.nest.map_structure(lambda s: tf.gather(s, parents), state)
        logits, state = model.step(ids, state)
        return tf.nn.log_softmax(logits), state

    def run():
        ids = np.full(batch * WIDTH, BOS_ID, np.int32)
        parents = np.arange(batch * WIDTH, dtype=np.int32)
        scores = np.tile([0.0] + [-np.inf] * (WIDTH - 1), (batch, 1))
        sequences = np.zeros((batch, WIDTH, 0), np.int32)
        st = state
        for _ in range(length):
            log_probs, st = step(ids, st, parents)
            candidates = scores[:, :, None] + log_probs.numpy().reshape(batch, WIDTH, -1)
            flat = candidates.reshape(batch, -1)
            top = np.argpartition(-flat, WIDTH, axis=1)[:, :WIDTH]
            beams, tokens = top // VOCAB, (top % VOCAB).astype(np.int32)
            scores = np.take_along_axis(flat, top, 1)
            sequences = np.concatenate(
                [np.take_along_axis(sequences, beams[:, :, None], 1), tokens[:, :, None]], 2
            )
            parents = (beams + np.arange(batch)[:, None] * WIDTH).reshape(-1).astype(np.int32)
            ids = tokens.reshape(-1)
        return sequences

    return run


def load_keras_hub(directory):
    """Imports the KerasHub samplers from `directory`, or returns the reason it cannot.

    Only `keras_hub.src.samplers` is loaded: stub parent packages stop the package's
    `__init__` from importing every model (and their tokenizers, sentencepiece, kagglehub
    dependencies, which are not installed). Nothing outside `directory` is touched.
    """
    if not os.path.isdir(os.path.join(directory, "keras_hub", "src", "samplers")):
        return None, (
            f"keras_hub not found in {directory}; install it there with "
            f"`pip install --no-deps --target {directory} keras-hub`"
        )
    for name, path in [("keras_hub", "keras_hub"), ("keras_hub.src", "keras_hub/src")]:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(directory, path)]
        sys.modules.setdefault(name, package)
    try:
        from keras_hub.src.samplers.beam_sampler import BeamSampler
        from keras_hub.src.samplers.random_sampler import RandomSampler
    except Exception as error:  # noqa: BLE001 - any failure means "skip, and say why"
        return None, f"importing keras_hub samplers failed: {type(error).__name__}: {error}"
    version = "?"
    for entry in os.listdir(directory):
        if entry.startswith("keras_hub-") and entry.endswith(".dist-info"):
            version = entry[len("keras_hub-") : -len(".dist-info")]
    return {"RandomSampler": RandomSampler, "BeamSampler": BeamSampler, "version": version}, None


def make_keras_hub(hub, model, batch, length, beam, jit=False):
    sampler = hub["BeamSampler"](num_beams=WIDTH) if beam else hub["RandomSampler"](seed=1)
    prompt = tf.concat([tf.fill([batch, 1], BOS_ID), tf.zeros([batch, length], tf.int32)], axis=1)
    mask = tf.concat([tf.ones([batch, 1], tf.bool), tf.zeros([batch, length], tf.bool)], 1)
    state = model.initial_state(batch)

    def next_fn(prompt, cache, index):
        logits, cache = model.step(prompt[:, index - 1], cache)
        return logits, None, cache

    @tf.function(jit_compile=jit)
    def run(prompt, state):
        return sampler(next_fn, prompt, cache=state, index=1, mask=mask)

    return lambda: run(prompt, state).numpy()


def measure_floors(model, length, repeats):
    """Upper bounds on batch-1 tokens/s that no decoding loop can beat on this machine.

    - `model step only`: `length` calls of `model.step` in one XLA-compiled `while_loop`,
      feeding a fixed id: the model's own cost per token, with no decoding logic at all;
    - `model step only at batch 5`: the same for the `width` rows of a batch-1 beam
      search: divided by the beam length, the most sequences/s any beam search can reach;
    - `recurrent matmul only`: `length` products `[1, units] x [units, 4 * units]` (the
      LSTM recurrent kernel) in one XLA-compiled loop: the arithmetic floor of a step.
    """

    def steps_only(batch):
        """A zero-argument callable: `length` model steps at `batch` in one XLA loop."""
        ids = tf.fill([batch], BOS_ID)

        @tf.function(jit_compile=True)
        def run(state):
            def body(t, state):
                return t + 1, model.step(ids, state)[1]

            return tf.while_loop(lambda t, _: t < length, body, (tf.constant(0), state))[1]

        state = model.initial_state(batch)
        return lambda: tf.nest.map_structure(lambda x: x.numpy(), run(state))

    kernel = tf.random.normal([UNITS, 4 * UNITS]) * 0.05

    @tf.function(jit_compile=True)
    def matmul_only(h):
        def body(t, h):
            return t + 1, tf.tanh(tf.matmul(h, kernel)[:, :UNITS])

        return tf.while_loop(lambda t, _: t < length, body, (tf.constant(0), h))[1]

    h = tf.zeros([1, UNITS])
    return {
        "batch 1: model step only (XLA loop)": length / median_seconds(steps_only(1), repeats),
        f"batch {WIDTH} (a batch-1 beam's rows): model step only (XLA loop)": length
        / median_seconds(steps_only(WIDTH), repeats),
        "batch 1: recurrent matmul only (XLA loop)": length
        / median_seconds(lambda: matmul_only(h).numpy(), repeats),
    }


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------


def median_seconds(fn, repeats):
    fn()  # warm-up: tracing / compilation
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default=str(RESULTS),
        help=f"write the figures as JSON here (default: {RESULTS.relative_to(REPO)}, kept in "
        "the repository; --quick writes nothing unless --out is given)",
    )
    parser.add_argument("--tokens", type=int, default=1000, help="sampled tokens per row")
    parser.add_argument("--beam-length", type=int, default=100, help="tokens per beam sequence")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keras-hub-dir", default="/tmp/khub")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.tokens, args.beam_length, args.batches, args.repeats = 20, 10, [1, 4], 1
        if args.out == str(RESULTS):
            args.out = None  # a smoke run never replaces the measured figures

    model, model_name = build_model()
    hub, hub_skip = load_keras_hub(args.keras_hub_dir)
    if hub_skip:
        print(f"keras_hub column skipped: {hub_skip}")

    # Every decoder drives the same step function: CharLM's `decoding_step()` (the step
    # that textrnn's generator uses) where it exists.
    stepper = model
    if hasattr(model, "decoding_step"):
        stepper = types.SimpleNamespace(
            step=model.decoding_step(), initial_state=model.initial_state
        )
    contenders = {
        "textrnn": lambda b, n, beam: make_textrnn(stepper, b, n, beam, jit=False),
        "textrnn+xla": lambda b, n, beam: make_textrnn(stepper, b, n, beam, jit=True),
        "API": lambda b, n, beam: make_api(model, b, n, beam, jit=False),
        "API+xla": lambda b, n, beam: make_api(model, b, n, beam, jit=True),
        "python loop": lambda b, n, beam: make_python_loop(stepper, b, n, beam),
    }
    if hub:
        contenders["keras_hub"] = lambda b, n, beam: make_keras_hub(hub, stepper, b, n, beam)
        contenders["keras_hub+xla"] = lambda b, n, beam: make_keras_hub(
            hub, stepper, b, n, beam, jit=True
        )

    rows = []
    for beam in (False, True):
        for batch in args.batches:
            length = args.beam_length if beam else args.tokens
            task = (
                f"beam w={WIDTH}, {length} tok, batch {batch}: seq/s"
                if beam
                else f"sample {length} tok, batch {batch}: tok/s"
            )
            runs, figures = {}, {}
            for name, make in contenders.items():
                try:
                    runs[name] = make(batch, length, beam)
                    runs[name]()  # warm-up: tracing / compilation
                except Exception as error:  # noqa: BLE001 - report and go on
                    print(f"{name} failed on '{task}': {type(error).__name__}: {error}")
                    runs.pop(name, None)
                    figures[name] = None
            times = recording.round_robin_seconds(runs, args.repeats)
            spread = {}
            for name, seconds in times.items():
                units = batch if beam else batch * length
                figures[name] = units / statistics.median(seconds)
                spread[name] = [units / max(seconds), units / min(seconds)]
            rows.append(
                {
                    "task": task,
                    "beam": beam,
                    "batch": batch,
                    "length": length,
                    "figures": figures,
                    "slowest_and_fastest": spread,
                }
            )
            print_row(task, figures, list(contenders))

    floors = measure_floors(stepper, args.tokens, args.repeats)
    for name, value in floors.items():
        print(f"floor, {name}: {value:,.0f} steps/s")

    report = {
        "model": f"{model_name}(vocab_size={VOCAB}, lstm, units={UNITS}, layers=1, "
        f"embedding_dim={EMBEDDING}), random weights",
        "machine": {
            "cpu": recording.machine(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
        "versions": {
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
            "keras_hub": hub["version"] if hub else None,
        },
        "keras_hub_skipped": hub_skip,
        "repeats": args.repeats,
        "statistic": "median wall-clock after one warm-up run; slowest_and_fastest: the "
        "throughput of the slowest and the fastest repeat",
        "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "floors_steps_per_second": floors,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.out}")
    return report


def print_row(task, figures, names):
    if not hasattr(print_row, "header"):
        print_row.header = True
        print(f"{'':44}" + "".join(f"{n:>14}" for n in names))
    cells = "".join(f"{figures[n]:>14.1f}" if figures.get(n) else f"{'-':>14}" for n in names)
    print(f"{task:44}{cells}", flush=True)


if __name__ == "__main__":
    main()
