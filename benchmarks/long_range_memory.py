"""Long-range memory: each cell trained on the adding problem and the copy task over lags.

For every task (`adding`, `copy`, from `textrnn.data.synthetic`), cell (`rnn`, `lstm`,
`gru`, from `textrnn.layers.recurrent.CELLS`), lag and seed, a fresh one-layer model of
`--units` units is trained with the same budget: `--steps` Adam steps (learning rate
`--learning-rate`, gradients clipped to global norm 1) on batches of `--batch` examples
freshly generated for every step, so no example is seen twice. Then it is scored on
`--test-examples` held-out examples (another seed stream):

- adding problem (`length` = the lag): a Dense(1) on the last hidden state, mean-squared
  error; the trivial baseline (always predict 1.0) scores 1/6 ≈ 0.167;
- copy task (10 symbols of 8, recalled after `lag` steps): a Dense(8) on each of the
  last 10 hidden states, cross-entropy per recalled symbol in nats and accuracy; the
  trivial baseline (uniform guessing) scores log 8 ≈ 2.079 nats and 12.5%.

Reported per run: the final test error, the baseline, their ratio (below 1 means the
model learned something the baseline cannot), and the training time. Writes one JSON
file (`--out`) with the settings, the machine, the command and every run, prints a
table, and draws error / baseline against lag, one line per cell (`--plot`).

Training batches of seed `s` at step `i` use generator seed `s * 100_000 + i + 1`; the
test set uses `10**9 + s`, so the streams never meet (for fewer than 100,000 steps).

    python benchmarks/long_range_memory.py                     # the full sweep
    python benchmarks/long_range_memory.py --quick --out /tmp/lrm.json   # a smoke run

Budget: the README's sweep (lags 10, 25, 50, 100, 200, 3 seeds, 2,000 steps of 32, 64
units: 90 runs) took 40 min of training on the 2-core Intel Xeon while other work shared
it; the cost grows about linearly with the lag.

Runs one model at a time; nothing else heavy should run meanwhile.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras
import numpy as np
import recording
import tensorflow as tf

from textrnn.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline_cross_entropy,
    copy_task,
)
from textrnn.layers.recurrent import CELLS

TASKS = ("adding", "copy")
NUM_SYMBOLS = 8
NUM_RECALLED = 10
DEFAULT_OUT = recording.REPO / "benchmarks" / "results" / "long_range_memory.json"
# --quick: every cell and task, two short lags, a few steps: checks that the script runs.
QUICK = {"lags": [5, 10], "steps": 20, "batch": 16, "units": 16, "test_examples": 64}


def make_batch(task, n, lag, seed):
    """`(inputs, targets)` of `n` examples of `task` at `lag`."""
    if task == "adding":
        return adding_problem(n, length=lag, seed=seed)
    return copy_task(n, lag=lag, seed=seed, num_symbols=NUM_SYMBOLS, num_recalled=NUM_RECALLED)


def build_model(task, cell, units, lag, learning_rate):
    """One recurrent layer of `cell` and a task head, compiled with Adam and clipnorm 1."""
    rnn = CELLS[cell](units, return_sequences=(task == "copy"), name=cell)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0)
    if task == "adding":
        inputs = keras.Input((lag, 2))
        outputs = keras.layers.Dense(1)(rnn(inputs))
        model = keras.Model(inputs, keras.layers.Reshape(())(outputs))
        model.compile(optimizer=optimizer, loss="mse")
        return model
    inputs = keras.Input((lag + 2 * NUM_RECALLED,), dtype="int32")
    x = keras.layers.Embedding(NUM_SYMBOLS + 2, 16)(inputs)
    x = rnn(x)[:, -NUM_RECALLED:]
    model = keras.Model(inputs, keras.layers.Dense(NUM_SYMBOLS)(x))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def run_one(task, cell, lag, seed, args):
    """Trains and scores one model; returns its row of the results."""
    keras.utils.set_random_seed(seed)
    model = build_model(task, cell, args.units, lag, args.learning_rate)
    start = time.perf_counter()
    train_loss = math.nan
    for step in range(args.steps):
        inputs, targets = make_batch(task, args.batch, lag, seed * 100_000 + step + 1)
        out = model.train_on_batch(inputs, targets, return_dict=True)
        train_loss = float(out["loss"])
    seconds = time.perf_counter() - start
    test_inputs, test_targets = make_batch(task, args.test_examples, lag, 10**9 + seed)
    scores = model.evaluate(test_inputs, test_targets, batch_size=256, verbose=0, return_dict=True)
    if task == "adding":
        baseline, metric = ADDING_BASELINE_MSE, "mse"
    else:
        baseline, metric = copy_baseline_cross_entropy(NUM_SYMBOLS), "cross_entropy_nats"
    row = {
        "task": task,
        "cell": cell,
        "lag": lag,
        "seed": seed,
        "metric": metric,
        "error": float(scores["loss"]),
        "baseline": baseline,
        "error_over_baseline": float(scores["loss"]) / baseline,
        "final_train_loss": train_loss,
        "train_seconds": round(seconds, 1),
    }
    if task == "copy":
        row["accuracy"] = float(scores["accuracy"])
        row["baseline_accuracy"] = 1.0 / NUM_SYMBOLS
    return row


def table(rows) -> str:
    """A Markdown table: error / baseline (mean over seeds) per task, cell and lag."""
    lags = sorted({r["lag"] for r in rows})
    lines = [
        "| task | cell | " + " | ".join(f"lag {lag}" for lag in lags) + " |",
        "|---|---|" + "---:|" * len(lags),
    ]
    for task in TASKS:
        for cell in CELLS:
            mine = [r for r in rows if r["task"] == task and r["cell"] == cell]
            if not mine:
                continue
            cells = []
            for lag in lags:
                ratios = [r["error_over_baseline"] for r in mine if r["lag"] == lag]
                cells.append(f"{np.mean(ratios):.3f}" if ratios else "")
            lines.append(f"| {task} | {cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path) -> Path:
    """error / baseline against lag (log x), one panel per task, one line per cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    for i, task in enumerate(TASKS):
        axes = figure.add_subplot(1, len(TASKS), i + 1)
        for cell in CELLS:
            mine = [r for r in rows if r["task"] == task and r["cell"] == cell]
            lags = sorted({r["lag"] for r in mine})
            if not lags:
                continue
            means = [
                np.mean([r["error_over_baseline"] for r in mine if r["lag"] == g]) for g in lags
            ]
            axes.plot(lags, means, marker="o", label=cell)
        axes.axhline(1.0, color="grey", linestyle="--", label="trivial baseline")
        axes.set_xscale("log")
        axes.set_xlabel("lag (steps)")
        axes.set_ylabel("test error / trivial baseline")
        axes.set_title(
            {"adding": "adding problem (MSE)", "copy": "copy task (cross-entropy)"}[task]
        )
        axes.set_ylim(bottom=0.0)
        axes.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--lags", nargs="+", type=int, default=[10, 25, 50, 100, 200])
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 ... N-1 per setting")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per run")
    parser.add_argument("--batch", type=int, default=32, help="examples per step")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the JSON results file")
    parser.add_argument("--plot", default=None, help="also draw the results (PNG)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK} (overrides those options)",
    )
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    for name in ("steps", "batch", "units", "test_examples", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if min(args.lags) < 2:
        parser.error(f"every lag must be >= 2 (two halves for the adding problem): {args.lags}")

    rows = []
    for task in args.tasks:
        for cell in args.cells:
            for lag in args.lags:
                for seed in range(args.seeds):
                    row = run_one(task, cell, lag, seed, args)
                    rows.append(row)
                    print(
                        f"{task:6s} {cell:4s} lag {lag:4d} seed {seed}: {row['metric']} "
                        f"{row['error']:.4f} (baseline {row['baseline']:.4f}, ratio "
                        f"{row['error_over_baseline']:.3f}) in {row['train_seconds']:.0f} s",
                        flush=True,
                    )
    results = {
        "settings": {
            "quick": args.quick,
            "steps": args.steps,
            "batch": args.batch,
            "units": args.units,
            "learning_rate": args.learning_rate,
            "clipnorm": 1.0,
            "optimizer": "adam",
            "seeds": args.seeds,
            "test_examples": args.test_examples,
            "copy_num_symbols": NUM_SYMBOLS,
            "copy_num_recalled": NUM_RECALLED,
            "adding_values": "uniform [0, 1] (Le, Jaitly & Hinton 2015)",
        },
        "machine": recording.machine(),
        **({"shared_cpu": True} if args.shared_cpu else {}),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "command": "python benchmarks/long_range_memory.py " + " ".join(sys.argv[1:]),
        "commit": recording.commit(),
        "date": datetime.date.today().isoformat(),
        "total_train_seconds": round(sum(r["train_seconds"] for r in rows), 1),
        "runs": rows,
    }
    out = recording.write_json(args.out, results)
    print(table(rows))
    print(f"results written to {out}")
    if args.plot:
        print(f"plot written to {plot(rows, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
