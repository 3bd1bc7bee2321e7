"""Benchmark: train a translation recipe, tune the beam length penalty, score the test set.

Trains (or resumes) `models/<recipe>/config.toml` with any overrides (the epoch is chosen
by validation BLEU), then:

1. tunes the GNMT length-penalty `alpha` of beam search (width `--beam-width`) on the
   validation split, over `--alphas`;
2. translates the test split greedily and with the tuned beam, and scores both with
   sacreBLEU (detokenised, cased; signature recorded), chrF, and corpus BLEU-4 on
   lowercased 13a-tokenised text (the bentrevett/pytorch-seq2seq protocol, with an nltk
   cross-check);
3. records everything, with training time and target tokens/s, in
   `models/<recipe>/results.json` under `--label`, regenerates the table in
   `models/<recipe>/results.md`, and writes the test hypotheses beside the run.

    TEXTRNN_DATA_DIR=../shared/data python benchmarks/translation_recipe.py \\
        --recipe translate-multi30k-de-en --label luong-general-feeding --run-dir runs/de-en

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
from textrnn.training.config import load_config
from textrnn.training.runs import load_run
from textrnn.translation.data import load_splits
from textrnn.translation.evaluate import evaluate_translation
from textrnn.translation.train import train_translation


def table(results: dict) -> str:
    rows = [
        (
            "| label | attention | cell | encoder | decoder | params | train time (min) "
            "| target tokens/s | epochs | test pairs | validation BLEU (greedy) | test sacreBLEU greedy "
            "| test sacreBLEU beam | test chrF beam | test lowercased tokenised BLEU beam | alpha |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        m = r["config"]["model"]
        attention = m["attention"]
        if attention == "luong":
            attention += f" {m['attention_score']}" + (" + input feeding" * m["input_feeding"])
        enc = f"{'bi' if m['bidirectional'] else ''}{m['cell']} {m['encoder_layers']}x{m['encoder_units']}"
        dec = f"{m['cell']} {m['decoder_layers']}x{m['decoder_units']}"
        g, b = r["test_greedy"], r["test_beam"]
        rows.append(
            f"| {label} | {attention} | {m['cell']} | {enc} | {dec} | {r['parameters']:,} "
            f"| {r['train_seconds'] / 60:.1f}{recording.time_mark(r)} | {r['train_tokens_per_second']:,.0f} | {r['epochs']} "
            f"| {g['sentences']:,} | {r['validation']['bleu']:.2f} | {g['bleu']:.2f} | **{b['bleu']:.2f}** "
            f"| {b['chrf']:.2f} | **{b['lowercase_tokenized_bleu']:.2f}** | {r['alpha']} |"
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", required=True, help="folder name under models/")
    parser.add_argument("--label", required=True, help="row name in results.json")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    recording.add_shared_cpu_argument(parser)
    parser.add_argument("--beam-width", type=int, default=5)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.3, 0.6, 0.9, 1.2])
    parser.add_argument("--skip-training", action="store_true", help="score a finished run")
    args = parser.parse_args(argv)

    recipe_dir = recording.REPO / "models" / args.recipe
    run_dir = Path(args.run_dir)
    if args.skip_training:
        results = json.loads((run_dir / "results.json").read_text())
    else:
        cfg = load_config(recipe_dir / "config.toml", args.overrides, task="translate")
        results = train_translation(cfg, run_dir, resume=args.resume, verbose=2)
    model, tokenizers, cfg = load_run(run_dir)
    splits = load_splits(cfg)
    limit = cfg.translate.max_length

    tuning = {}
    for alpha in args.alphas:
        figures, _ = evaluate_translation(
            model,
            tokenizers,
            cfg,
            "validation",
            splits,
            strategy="beam",
            beam_width=args.beam_width,
            alpha=alpha,
            max_length=limit,
        )
        tuning[alpha] = figures["bleu"]
        print(f"validation beam {args.beam_width}, alpha {alpha}: BLEU {figures['bleu']:.2f}")
    alpha = max(tuning, key=lambda a: (tuning[a], -abs(a - 0.6)))

    greedy, greedy_hyps = evaluate_translation(
        model, tokenizers, cfg, "test", splits, strategy="greedy", max_length=limit
    )
    beam, beam_hyps = evaluate_translation(
        model,
        tokenizers,
        cfg,
        "test",
        splits,
        strategy="beam",
        beam_width=args.beam_width,
        alpha=alpha,
        max_length=limit,
    )
    for name, hyps in (("greedy", greedy_hyps), ("beam", beam_hyps)):
        (run_dir / f"test_{name}.hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    results.update(
        alpha_tuning_validation_bleu={str(a): b for a, b in tuning.items()},
        alpha=alpha,
        test_greedy=greedy,
        test_beam=beam,
    )
    command = recording.command_line(
        "translation_recipe.py", argv if argv is not None else sys.argv[1:]
    )
    results = recording.record(
        recipe_dir, args.label, results, command, table, shared_cpu=args.shared_cpu
    )
    print(json.dumps({k: results[k] for k in ("test_greedy", "test_beam", "alpha")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
