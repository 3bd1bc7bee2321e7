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
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "models" / "charlm-shakespeare"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, CPU only"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_table(results: dict) -> None:
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
    table = "\n".join(rows)
    md = RECIPE_DIR / "results.md"
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    start, end = "<!-- results-table:start -->", "<!-- results-table:end -->"
    if start in text and end in text:
        text = (
            text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
        )
    else:
        text += f"\n{start}\n{table}\n{end}\n"
    md.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", required=True, help="row name in results.json")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    import textrnn  # noqa: F401
    from textrnn.charlm_training import train_charlm
    from textrnn.config import load_config

    cfg = load_config(RECIPE_DIR / "config.toml", args.overrides)
    results = train_charlm(cfg, args.run_dir, resume=args.resume, verbose=2)
    command = "TEXTRNN_DATA_DIR=../shared/data python benchmarks/charlm_shakespeare.py " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    results.update(
        machine=machine(),
        command=command,
        commit=commit(),
        date=datetime.date.today().isoformat(),
    )
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
    path = RECIPE_DIR / "results.json"
    all_results = json.loads(path.read_text()) if path.exists() else {}
    all_results[args.label] = results
    path.write_text(json.dumps(all_results, indent=2) + "\n")
    write_table(all_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
