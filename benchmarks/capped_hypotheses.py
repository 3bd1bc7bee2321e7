"""Benchmark: which rule for beam hypotheses cut at the length cap translates best.

`BeamSearch(capped=...)` offers three rules for a hypothesis that reaches its row's length
cap without an end token: `force_end` (fairseq: only the end token may follow at the cap,
and it is scored), `rank_last` (cut hypotheses ranked after every ended one) and `prefix`
(ranked by their prefix, never paying for an end token: textrnn's rule before the audit).
This script decodes a split of a trained translation run with each rule, interleaved,
under two settings:

- `recipe`: the run's own `[translate]` settings (beam width, alpha, length caps): the
  setting the default is chosen by;
- `tight`: alpha 0 (no length normalisation) and a cap of `ratio * source tokens +
  offset` with `--tight-ratio` / `--tight-offset`, where many hypotheses are cut and the
  rules differ most.

For each it reports sacreBLEU, chrF, how many outputs were cut at the cap (no end token),
and how many outputs differ from `force_end`'s, and writes everything to
`benchmarks/results/capped_hypotheses.json` (a list of measurements, one per run dir and
split; a re-run of the same pair replaces its entry).

    TEXTRNN_DATA_DIR=../shared/data python benchmarks/capped_hypotheses.py \\
        --run-dir runs/de-en --split validation
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recording

import textrnn  # noqa: F401  (selects the TensorFlow backend)
from textrnn.decoding.strategies import CAPPED_RULES
from textrnn.metrics.translation import corpus_scores
from textrnn.text.special_tokens import EOS
from textrnn.training.runs import load_run
from textrnn.translation.data import load_splits
from textrnn.translation.translator import make_translator

OUT = recording.REPO / "benchmarks" / "results" / "capped_hypotheses.json"


def measure(model, tokenizers, cfg, pairs, rule, alpha, ratio, offset):
    """Translates `pairs` with beam search under `rule`; figures and the translations."""
    translate = dataclasses.replace(
        cfg.translate, capped=rule, max_length_ratio=ratio, max_length_offset=offset
    )
    translator = make_translator(model, tokenizers, dataclasses.replace(cfg, translate=translate))
    start = time.perf_counter()
    results = translator.translate_texts(
        pairs.sources,
        "beam",
        warn=False,
        beam_width=cfg.translate.beam_width,
        alpha=alpha,
        max_length=cfg.translate.max_length,
    )
    seconds = time.perf_counter() - start
    hypotheses = [r["translation"] for r in results]
    cut = sum(1 for r in results if len(r["target_tokens"]) and r["target_tokens"][-1] != EOS)
    scores = corpus_scores(hypotheses, pairs.targets)
    figures = {
        "bleu": round(scores["bleu"], 2),
        "chrf": round(scores["chrf"], 2),
        "cut_at_cap": cut,
        "seconds": round(seconds, 1),
        "bleu_signature": scores["bleu_signature"],
    }
    return figures, hypotheses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a trained translation run")
    parser.add_argument(
        "--split", default="validation", help="split to decode (default: validation)"
    )
    parser.add_argument("--every", type=int, default=1, help="every K-th pair only (default: all)")
    parser.add_argument("--tight-ratio", type=float, default=1.0)
    parser.add_argument("--tight-offset", type=int, default=0)
    parser.add_argument("--out", default=str(OUT), help=f"results file (default: {OUT})")
    args = parser.parse_args(argv)

    model, tokenizers, cfg = load_run(args.run_dir)
    pairs = load_splits(cfg)[args.split]
    if args.every < 1:
        parser.error(f"--every must be >= 1. Received: {args.every}")
    if args.every > 1:
        pairs = type(pairs)(pairs.sources[:: args.every], pairs.targets[:: args.every])
    settings = {
        "recipe": (
            cfg.translate.alpha,
            cfg.translate.max_length_ratio,
            cfg.translate.max_length_offset,
        ),
        "tight": (0.0, args.tight_ratio, args.tight_offset),
    }
    measurement = {
        "run_dir": args.run_dir,
        "dataset": cfg.data.dataset,
        "direction": f"{cfg.data.source_language}-{cfg.data.target_language}",
        "split": args.split,
        "sentences": len(pairs.sources),
        "every": args.every,
        "beam_width": cfg.translate.beam_width,
        "max_length": cfg.translate.max_length,
        "settings": {
            name: {"alpha": a, "max_length_ratio": r, "max_length_offset": o}
            for name, (a, r, o) in settings.items()
        },
        "results": {},
        "machine": recording.machine(),
        "commit": recording.commit(),
        "command": recording.command_line(
            "capped_hypotheses.py", sys.argv[1:] if argv is None else argv
        ),
        "date": datetime.date.today().isoformat(),
    }
    for name, (alpha, ratio, offset) in settings.items():
        outputs, rows = {}, {}
        for rule in CAPPED_RULES:
            rows[rule], outputs[rule] = measure(
                model, tokenizers, cfg, pairs, rule, alpha, ratio, offset
            )
        for rule in CAPPED_RULES:
            rows[rule]["differ_from_force_end"] = sum(
                a != b for a, b in zip(outputs[rule], outputs["force_end"])
            )
            print(
                f"{name:7s} {rule:10s} sacreBLEU {rows[rule]['bleu']:6.2f}  chrF "
                f"{rows[rule]['chrf']:6.2f}  cut at cap {rows[rule]['cut_at_cap']:5d}  "
                f"differ from force_end {rows[rule]['differ_from_force_end']:5d}  "
                f"({rows[rule]['seconds']} s)",
                flush=True,
            )
        measurement["results"][name] = rows

    out = Path(args.out)
    kept = json.loads(out.read_text()) if out.exists() else []
    kept = [m for m in kept if (m["run_dir"], m["split"]) != (args.run_dir, args.split)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([*kept, measurement], indent=2) + "\n")
    tmp.replace(out)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
