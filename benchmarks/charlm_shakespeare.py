"""Benchmark: train the charlm-shakespeare recipe and record its measured figures.

Trains (or resumes) the recipe in a run directory, then writes the figures — validation
loss in nats and bits per char on nanoGPT's window protocol and in one sequential pass,
wall-clock training time, training characters per second, the machine and the exact
command — into `models/charlm-shakespeare/results.json` under a label, and regenerates
the table in `models/charlm-shakespeare/results.md`.

    TEXTRNN_DATA_DIR=../shared/data python benchmarks/charlm_shakespeare.py \
        --label lstm-1x512-60min --run-dir runs/charlm-shakespeare

Ablations use overrides, e.g. `--set model.cell=gru --set train.max_minutes=10`.
Do not run anything else heavy on the machine meanwhile: the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recording

import textrnn  # noqa: F401  (selects the TensorFlow backend)
from textrnn.charlm.train import train_charlm
from textrnn.training.config import load_config

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "models" / "charlm-shakespeare"


def table(results: dict) -> str:
    rows = [
        (
            "| label | cell | layers | units | params | train time (min) | train chars/s | "
            "val loss, windows (nats) | val bpc, windows | val loss, sequential (nats) | val bpc, sequential | epochs |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        m = r["config"]["model"]
        rows.append(
            f"| {label} | {m['cell']} | {m['num_layers']} | {m['units']} | {r['parameters']:,} | "
            f"{r['train_seconds'] / 60:.1f} | {r['train_tokens_per_second']:,.0f} | "
            f"{r['val_loss_windows']:.4f} | {r['val_bpc_windows']:.4f} | "
            f"{r['val_loss_sequential']:.4f} | {r['val_bpc_sequential']:.4f} | {r['epochs']} |"
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", required=True, help="row name in results.json")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    cfg = load_config(RECIPE_DIR / "config.toml", args.overrides)
    results = train_charlm(cfg, args.run_dir, resume=args.resume, verbose=2)
    command = recording.command_line(
        "charlm_shakespeare.py", argv if argv is not None else sys.argv[1:]
    )
    results = recording.record(RECIPE_DIR, args.label, results, command, table)
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
