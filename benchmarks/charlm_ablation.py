"""Ablation: LSTM vs GRU, one vs two layers, at the same wall-clock budget.

Each configuration trains the charlm-shakespeare recipe for `--minutes` with a cosine
schedule sized (from a measured throughput) to end when the budget does, then records
its figures in `models/charlm-shakespeare/results.json` under `ablation-<cell>-<layers>x512-<minutes>min`.

    TEXTRNN_DATA_DIR=../shared/data python benchmarks/charlm_ablation.py --minutes 8

Runs one configuration at a time; nothing else heavy should run meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charlm_shakespeare

# Training characters per second measured on the 2-core CI machine at batch 64 x 256
# (probe runs of 20 steps); used only to size each cosine schedule to its budget.
EXPECTED_CHARS_PER_SECOND = {
    ("lstm", 1): 17000,
    ("lstm", 2): 6000,
    ("gru", 1): 15000,
    ("gru", 2): 5500,
}
CHARS_PER_STEP = 64 * 256


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--runs-root", default="runs/ablation")
    parser.add_argument("--only", nargs="*", default=None, help="e.g. gru-1 lstm-2")
    args = parser.parse_args(argv)
    for (cell, layers), speed in EXPECTED_CHARS_PER_SECOND.items():
        name = f"{cell}-{layers}"
        if args.only and name not in args.only:
            continue
        steps = int(speed * args.minutes * 60 / CHARS_PER_STEP)
        epochs = 4
        label = f"ablation-{cell}-{layers}x512-{args.minutes:g}min"
        charlm_shakespeare.main(
            [
                "--label",
                label,
                "--run-dir",
                f"{args.runs_root}/{label}",
                "--set",
                f"model.cell={cell}",
                "--set",
                f"model.num_layers={layers}",
                "--set",
                f"train.epochs={epochs}",
                "--set",
                f"train.steps_per_epoch={max(steps // epochs, 1)}",
                "--set",
                f"train.max_minutes={args.minutes}",
                "--set",
                "train.early_stopping_patience=0",
            ]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
