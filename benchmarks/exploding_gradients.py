"""Exploding gradients: a vanilla ReLU RNN whose recurrent matrix has spectral radius 1.2,
trained on tinyshakespeare with plain SGD, without and with gradient clipping.

Every run goes through textrnn's own training loop (`textrnn.training.loop.fit_resumable`,
the loop of every task) with the optimizer wrapped by `track_gradient_norm`, so the
global gradient norm of every step lands in the run's `gradient_norms.csv` (and
TensorBoard) exactly as in a recipe run, and a NaN or infinite loss ends the run with the
loop's `NonFiniteLossError`. The model is a character LM of one `keras.layers.SimpleRNN`
(ReLU units, or tanh as the recipes' `rnn` cell) with its recurrent matrix initialised
orthogonal times the radius, so every eigenvalue has modulus exactly the radius (the
measured spectral radius is recorded). Settings per seed:

- `relu, radius 1.2, no clipping`: the gradient norm grows until one step's update is
  huge, and training ends in `NonFiniteLossError`;
- `relu, radius 1.2, clipnorm 1`: the same model, data and learning rate, gradients
  clipped to global norm 1 (`SGD(global_clipnorm=1)`): the spikes are cut, training goes on;
- `relu, radius 0.9, no clipping`: a control with the spectral radius below 1;
- `tanh, radius 1.2, no clipping`: the recipes' cell, whose saturation bounds the
  forward pass.

Each setting runs for `--seeds` seeds (the seed fixes initial weights and windows; the
three settings of one seed see the same windows). Writes one JSON file (`--out`) with
the settings, the machine, the command and every run (the per-step gradient norms, the
per-epoch validation loss and how each run ended), prints a table, and draws gradient
norm per step (log scale) and validation loss per epoch (`--plot`).

    python benchmarks/exploding_gradients.py --plot docs/exploding_gradients.png
    python benchmarks/exploding_gradients.py --quick --out /tmp/explode.json   # smoke run

Runs one model at a time; the figures that matter here are not timings.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras
import numpy as np
import recording
import tensorflow as tf

from textrnn.charlm.data import load_char_corpus
from textrnn.data import pipelines
from textrnn.metrics import lm_evaluation
from textrnn.text.char_tokenizer import CharTokenizer
from textrnn.training.config import TrainConfig
from textrnn.training.gradient_norms import GRADIENT_NORMS_FILE, track_gradient_norm
from textrnn.training.guards import NonFiniteLossError
from textrnn.training.loop import fit_resumable
from textrnn.training.progress import TrainingProgress

DEFAULT_OUT = recording.REPO / "benchmarks" / "results" / "exploding_gradients.json"
QUICK = {"epochs": 3, "steps_per_epoch": 10, "units": 64, "seeds": 1, "validation_windows": 32}
# (activation, spectral radius, clipnorm); clipnorm 0 = no clipping.
SETTINGS = (("relu", 1.2, 0.0), ("relu", 1.2, 1.0), ("relu", 0.9, 0.0), ("tanh", 1.2, 0.0))


def label(activation: str, radius: float, clipnorm: float) -> str:
    clip = f"clipnorm {clipnorm:g}" if clipnorm else "no clipping"
    return f"{activation}, radius {radius:g}, {clip}"


def build_model(vocab_size: int, args, activation: str, radius: float):
    """Embedding -> SimpleRNN(activation, recurrent kernel orthogonal x radius) -> Dense."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, args.embedding_dim),
            keras.layers.SimpleRNN(
                args.units,
                activation=activation,
                return_sequences=True,
                recurrent_initializer=keras.initializers.Orthogonal(gain=radius),
            ),
            keras.layers.Dense(vocab_size),
        ]
    )


def spectral_radius(model) -> float:
    kernel = model.layers[1].cell.recurrent_kernel.numpy().astype(np.float64)
    return float(np.max(np.abs(np.linalg.eigvals(kernel))))


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_one(activation, radius, clipnorm, seed, data, args, root: Path) -> dict:
    """One training run through `fit_resumable`; returns its record."""
    train_ids, val_ids, vocab_size = data
    keras.utils.set_random_seed(seed)
    model = build_model(vocab_size, args, activation, radius)
    measured_radius = spectral_radius(model)
    optimizer = keras.optimizers.SGD(args.learning_rate, global_clipnorm=clipnorm or None)
    model.compile(
        optimizer=track_gradient_norm(optimizer),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    train = TrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        learning_rate=args.learning_rate,
        lr_schedule="constant",
        clipnorm=clipnorm,
        seed=seed,
        checkpoint_every_minutes=0.0,
        keep_checkpoints=1,
    )
    train_ds = pipelines.lm_random_windows(train_ids, args.seq_len, args.batch, seed=seed)
    offsets = lm_evaluation.window_offsets(
        val_ids.size, args.seq_len, args.validation_windows, seed=1
    )
    windows = val_ids[offsets[:, None] + np.arange(args.seq_len + 1)[None, :]]
    val_ds = tf.data.Dataset.from_tensor_slices((windows[:, :-1], windows[:, 1:])).batch(args.batch)
    run_dir = root / f"{activation}-radius{radius:g}-clip{clipnorm:g}-seed{seed}"
    run_dir.mkdir(parents=True)
    progress = TrainingProgress(run_dir / "progress.json", args.batch * args.seq_len, 0.0)
    start = time.perf_counter()
    ended, error = "finished", None
    try:
        fit_resumable(model, train_ds, val_ds, train, run_dir, progress,
                      steps_per_epoch=args.steps_per_epoch, verbose=0, log=lambda _: None)  # fmt: skip
    except NonFiniteLossError as e:
        ended, error = "NonFiniteLossError", str(e)
    seconds = time.perf_counter() - start
    norms = _read_csv(run_dir / GRADIENT_NORMS_FILE)
    history = _read_csv(run_dir / "history.csv")
    values = [float(r["gradient_norm"]) for r in norms]
    finite = [v for v in values if math.isfinite(v)]
    return {
        "label": label(activation, radius, clipnorm),
        "activation": activation,
        "radius": radius,
        "measured_spectral_radius": round(measured_radius, 6),
        "clipnorm": clipnorm,
        "seed": seed,
        "ended": ended,
        "error": error,
        "steps": len(values),
        "max_gradient_norm": max(finite) if finite else None,
        "steps_clipped": sum(r["clipped"] in ("1", "True", "true") for r in norms),
        "gradient_norms": values,
        "val_loss": [float(r["val_loss"]) for r in history if r.get("val_loss") not in ("", "NA")],
        "final_val_loss": float(history[-1]["val_loss"]) if history else None,
        "train_seconds": round(seconds, 1),
    }


def table(rows) -> str:
    lines = [
        (
            "| setting | seed | ended | steps | largest gradient norm | steps clipped "
            "| final validation loss |"
        ),
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        largest = f"{r['max_gradient_norm']:.3g}" if r["max_gradient_norm"] is not None else "—"
        val = f"{r['final_val_loss']:.3f}" if r["final_val_loss"] is not None else "—"
        clipped = str(r["steps_clipped"]) if r["clipnorm"] else "—"
        lines.append(
            f"| {r['label']} | {r['seed']} | {r['ended']} | {r['steps']} | {largest} "
            f"| {clipped} | {val} |"
        )
    return "\n".join(lines)


def plot(rows, path, steps_per_epoch: int) -> Path:
    """Gradient norm per step (log y) and validation loss per epoch, one line per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    norms_axes, loss_axes = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    colours = {
        label(*s): c for s, c in zip(SETTINGS, ("tab:red", "tab:blue", "tab:green", "tab:orange"))
    }
    seen = set()
    for r in rows:
        colour = colours.get(r["label"], "black")
        name = r["label"] if r["label"] not in seen else None
        seen.add(r["label"])
        values = np.array(r["gradient_norms"], dtype=np.float64)
        steps = np.arange(1, values.size + 1)
        shown = np.isfinite(values) & (values > 0)
        # Unclipped runs on top: until its first clipped step a clipped run is the same run.
        on_top = 3 if not r["clipnorm"] else 2
        norms_axes.plot(steps[shown], values[shown], color=colour, lw=1.0, alpha=0.85,
                        label=name, zorder=on_top)  # fmt: skip
        if r["ended"] == "NonFiniteLossError":
            norms_axes.plot([values.size], [np.max(values[shown])], "x", color=colour, ms=9,
                            zorder=4)  # fmt: skip
        if r["val_loss"]:
            epochs_end = steps_per_epoch * np.arange(1, len(r["val_loss"]) + 1)
            loss_axes.plot(epochs_end, r["val_loss"], marker="o", color=colour, label=name)
    norms_axes.set_yscale("log")
    norms_axes.set_xscale("log")  # the unclipped runs end within the first few steps
    norms_axes.set_xlabel("training step (log scale)")
    norms_axes.set_ylabel("global gradient norm (before clipping)")
    norms_axes.set_title("gradient norm per step (x: non-finite loss, run ended)")
    norms_axes.legend(fontsize=8)
    loss_axes.set_xlabel("training step")
    loss_axes.set_ylabel("validation loss (nats/char)")
    loss_axes.set_title("validation loss at each epoch end")
    if any(r["val_loss"] for r in rows):
        loss_axes.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100, help="window length (BPTT steps)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.5, help="SGD learning rate")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 ... N-1 per setting")
    parser.add_argument("--validation-windows", type=int, default=128)
    parser.add_argument(
        "--corpus", default="tinyshakespeare", help="a dataset name or a text file's path"
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the JSON results file")
    parser.add_argument("--plot", default=None, help="also draw the results (PNG)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    for name in ("epochs", "steps_per_epoch", "units", "embedding_dim", "seq_len", "batch",
                 "seeds", "validation_windows"):  # fmt: skip
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")

    corpus = load_char_corpus(args.corpus)
    tokenizer = CharTokenizer.from_text(corpus["train"])
    data = (
        tokenizer.encode_text(corpus["train"]),
        tokenizer.encode_text(corpus["validation"]),
        tokenizer.vocab_size,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="textrnn-explode-") as root:
        for seed in range(args.seeds):
            for activation, radius, clipnorm in SETTINGS:
                row = run_one(activation, radius, clipnorm, seed, data, args, Path(root))
                rows.append(row)
                print(
                    f"{row['label']:34s} seed {seed}: {row['ended']} after {row['steps']} "
                    f"steps, largest norm {row['max_gradient_norm']}, final val loss "
                    f"{row['final_val_loss']} ({row['train_seconds']:.0f} s)",
                    flush=True,
                )
    results = {
        "settings": {
            "quick": args.quick,
            "model": f"Embedding {args.embedding_dim} -> SimpleRNN {args.units} -> Dense",
            "recurrent_initializer": "Orthogonal(gain=radius)",
            "optimizer": "SGD (no momentum), constant learning rate",
            "learning_rate": args.learning_rate,
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "seq_len": args.seq_len,
            "batch": args.batch,
            "seeds": args.seeds,
            "validation_windows": args.validation_windows,
            "corpus": args.corpus,
        },
        "machine": recording.machine(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "command": recording.command_line("exploding_gradients.py", sys.argv[1:]),
        "commit": recording.commit(),
        "date": datetime.date.today().isoformat(),
        "runs": rows,
    }
    out = recording.write_json(args.out, results)
    print(table(rows))
    print(f"results written to {out}")
    if args.plot:
        print(f"plot written to {plot(rows, args.plot, args.steps_per_epoch)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
