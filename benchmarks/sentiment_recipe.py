"""Benchmark: train a sentiment recipe and record its measured figures.

Trains (or resumes) `models/<recipe>/config.toml` with any overrides, then records the
classification report of every split (accuracy, precision, recall, F1, confusion matrix),
training time, tokens/s and padding fractions in `models/<recipe>/results.json` under
`--label`, and regenerates the table in `models/<recipe>/results.md`. The model is chosen
on the validation split; the test split is only reported.

    TEXTRNN_DATA_DIR=../shared/data python benchmarks/sentiment_recipe.py \\
        --recipe sentiment-sst2 --label bilstm-attention --run-dir runs/sst2

Ablations use overrides, e.g. `--set model.pooling=max --set model.cell=gru`.
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
from textrnn.sentiment.train import train_sentiment
from textrnn.training.config import load_config


def table(results: dict) -> str:
    rows = [
        (
            "| label | cell | directions | layers | units | pooling | tokenizer | max len "
            "| params | validation split | validation acc | test acc | test F1 (positive) "
            "| test macro F1 | train time (min) | train tokens/s | epochs "
            "| padding, bucketed / not |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        m, d = r["config"]["model"], r["config"]["data"]
        test = r.get("test")
        rows.append(
            f"| {label} | {m['cell']} | {2 if m['bidirectional'] else 1} | {m['num_layers']} "
            f"| {m['units']} | {m['pooling']} | {d['tokenizer']} | {d['max_length']} "
            f"| {r['parameters']:,} | {_validation_split(d)} | {r['validation']['accuracy']:.4f} "
            + (
                f"| **{test['accuracy']:.4f}** | {test.get('f1', float('nan')):.4f} "
                f"| {test['macro']['f1']:.4f} "
                if test
                else "| - | - | - "
            )
            + f"| {r['train_seconds'] / 60:.1f}{recording.time_mark(r)} | {r['train_tokens_per_second']:,.0f} "
            f"| {r['epochs']} | {r['padding_fraction_bucketed'] or 0:.1%} / "
            f"{r['padding_fraction_unbucketed']:.1%} |"
        )
    return "\n".join(rows)


def _validation_split(data: dict) -> str:
    """How the row's validation set was made (rows older than the option were random)."""
    if data["dataset"] == "sst2":
        return "GLUE dev"
    if data["dataset"] == "imdb":
        return "movie blocks" if data.get("validation_split") == "movie_blocks" else "random"
    return "given"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", required=True, help="folder name under models/")
    parser.add_argument("--label", required=True, help="row name in results.json")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)

    recipe_dir = recording.REPO / "models" / args.recipe
    cfg = load_config(recipe_dir / "config.toml", args.overrides, task="sentiment")
    results = train_sentiment(cfg, args.run_dir, resume=args.resume, verbose=2)
    command = recording.command_line(
        "sentiment_recipe.py", argv if argv is not None else sys.argv[1:]
    )
    results = recording.record(
        recipe_dir, args.label, results, command, table, shared_cpu=args.shared_cpu
    )
    summary = {s: results[s]["accuracy"] for s in ("train", "validation", "test") if s in results}
    print(json.dumps({"accuracy": summary, "train_seconds": results["train_seconds"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
