"""Training throughput of the numerics options: float32 vs mixed_bfloat16 vs XLA.

One character LM of the Shakespeare recipe's size (`textrnn.charlm.model.CharLM`: LSTM,
1 layer, `--units` units, embedding 64, vocabulary 65), trained with the project's
optimizer (`textrnn.training.optimizers.make_optimizer`) on random windows of random ids
(throughput does not depend on the text), once per option:

- `float32`: `[train] precision = "float32"`, `jit_compile = false` (the default);
- `mixed_bfloat16`: `precision = "mixed_bfloat16"`;
- `float32+xla`: `jit_compile = true`;
- `mixed_bfloat16+xla`: both;
- `mixed_float16` (only with `--options ... mixed_float16`; meant for GPUs).

Each model is built as `textrnn train` builds it (`textrnn.training.launch.training_scope`
and `textrnn.training.numerics.prepare_model`) and trained by Keras's compiled
`train_function`, the one `fit_resumable` runs. Figure: training tokens/s (batch x
seq_len per step) of a block of `--steps` steps, the median over `--repeats` blocks
after one warm-up block (tracing and compilation excluded). The options take turns, one
block each per round, so a slow spell of the machine hits all of them alike; the spread
(slowest and fastest block) is reported too. These are wall-clock figures: other work on
the machine changes them, so compare the columns of one run.

Usage:
    python benchmarks/numerics_options.py                 # writes benchmarks/results/numerics_options.json
    python benchmarks/numerics_options.py --quick         # a smoke run, tiny sizes, writes nothing
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import recording
import tensorflow as tf

from textrnn.charlm.model import CharLM
from textrnn.data import pipelines
from textrnn.training import numerics
from textrnn.training.config import load_config
from textrnn.training.launch import training_scope
from textrnn.training.optimizers import make_optimizer

REPO = recording.REPO
RESULTS = REPO / "benchmarks" / "results" / "numerics_options.json"
VOCAB = 65
OPTIONS = {
    "float32": ["train.precision=float32"],
    "mixed_bfloat16": ["train.precision=mixed_bfloat16"],
    "float32+xla": ["train.precision=float32", "train.jit_compile=true"],
    "mixed_bfloat16+xla": ["train.precision=mixed_bfloat16", "train.jit_compile=true"],
    "mixed_float16": ["train.precision=mixed_float16"],
}
DEFAULT_OPTIONS = ["float32", "mixed_bfloat16", "float32+xla", "mixed_bfloat16+xla"]


def make_contender(overrides, args):
    """A `run(steps) -> seconds` function training its own model under `overrides`."""
    sets = [
        f"model.units={args.units}",
        "model.embedding_dim=64",
        f"data.seq_len={args.seq_len}",
        f"data.batch_size={args.batch}",
        "train.warmup_steps=10",
        *overrides,
    ]
    cfg = load_config(None, sets)
    keras.utils.set_random_seed(0)
    ids = np.random.default_rng(0).integers(0, VOCAB, 200_000).astype(np.int32)
    dataset = pipelines.lm_random_windows(ids, args.seq_len, args.batch, seed=0)
    with training_scope(cfg.train):
        model = CharLM(
            vocab_size=VOCAB, **{k: getattr(cfg.model, k) for k in ("units", "embedding_dim")}
        )
        model.build()
        model.compile(
            optimizer=make_optimizer(cfg.train, 10_000),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        numerics.prepare_model(model, cfg.train)
        model.make_train_function()
    iterator = iter(dataset)

    def run(steps):
        start = time.perf_counter()
        for _ in range(steps):
            logs = model.train_function(iterator)
        float(logs["loss"])  # waits for the last step
        return time.perf_counter() - start

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default=str(RESULTS),
        help=f"write the figures as JSON here (default: {RESULTS.relative_to(REPO)}; --quick "
        "writes nothing unless --out is given)",
    )
    parser.add_argument(
        "--options", nargs="+", default=DEFAULT_OPTIONS, choices=list(OPTIONS), help="contenders"
    )
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per option")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.units, args.seq_len, args.batch, args.steps, args.repeats = 16, 16, 4, 2, 2
        if args.out == str(RESULTS):
            args.out = None  # a smoke run never replaces the measured figures

    runs = {}
    for name in args.options:
        runs[name] = make_contender(OPTIONS[name], args)
        runs[name](args.steps)  # warm-up: tracing and compilation
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):  # round robin
        for name, run in runs.items():
            seconds[name].append(run(args.steps))
    tokens = args.steps * args.batch * args.seq_len
    figures = {}
    for name, times in seconds.items():
        figures[name] = {
            "tokens_per_second": tokens / statistics.median(times),
            "slowest_and_fastest": [tokens / max(times), tokens / min(times)],
            "vs_float32": (
                statistics.median(seconds["float32"]) / statistics.median(times)
                if "float32" in seconds
                else None
            ),
        }
        spread = figures[name]["slowest_and_fastest"]
        print(
            f"{name:>20}: {figures[name]['tokens_per_second']:>10,.0f} tokens/s "
            f"(blocks {spread[0]:,.0f} .. {spread[1]:,.0f})"
        )
    report = {
        "model": f"CharLM(lstm, units={args.units}, layers=1, embedding_dim=64, "
        f"vocab_size={VOCAB}), batch {args.batch} x seq_len {args.seq_len}",
        "machine": recording.machine(),
        "platform": platform.platform(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "steps_per_block": args.steps,
        "repeats": args.repeats,
        "statistic": "median tokens/s over the timed blocks after one warm-up block; "
        "options interleaved round robin",
        "shared_cpu": args.shared_cpu,
        "command": recording.command_line(
            "numerics_options.py", sys.argv[1:] if argv is None else argv
        ),
        "commit": recording.commit(),
        "date": time.strftime("%Y-%m-%d"),
        "figures": figures,
    }
    if args.out:
        out = recording.write_json(args.out, report)
        print(f"written: {out}")
    return report


if __name__ == "__main__":
    main()
