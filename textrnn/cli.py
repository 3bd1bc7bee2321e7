"""The `textrnn` command line: a thin layer over the Python API.

textrnn quickstart                      # offline demo: 1 minute of training, then text
textrnn train charlm|sentiment|translate --recipe models/<recipe>/config.toml --run-dir runs/x
textrnn train ... --resume               # continue after a kill
textrnn evaluate --run-dir runs/x        # the task's figures (loss, accuracy/F1, BLEU/chrF)
textrnn generate --run-dir runs/shakes --prompt "ROMEO:" --length 300 --strategy sample
textrnn predict --run-dir runs/sst2 --text "a gem of a film"      # or one text per stdin line
textrnn explain --run-dir runs/sst2 --text "a gem of a film" --plot weights.png
textrnn translate --run-dir runs/de-en --text "Ein Hund läuft." --beam-width 5 --n-best 3
textrnn export --run-dir runs/x --out exports/x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import textrnn  # noqa: F401  (registers every task; selects the TensorFlow backend)
from textrnn.charlm.config import GenerateConfig
from textrnn.charlm.generator import generate
from textrnn.diagnostics.attention_plot import (
    format_token_weights,
    plot_attention,
    plot_token_weights,
)
from textrnn.quickstart import run_quickstart
from textrnn.sentiment.predictor import make_predictor
from textrnn.training import task_registry
from textrnn.training.config import load_config
from textrnn.training.runs import load_run
from textrnn.translation.config import decoding_options
from textrnn.translation.translator import make_translator


def _add_strategy_args(p):
    p.add_argument(
        "--strategy",
        choices=["greedy", "sample", "beam"],
        default=None,
        help="decoding strategy (default: the recipe's)",
    )
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None, help="0 = off")
    p.add_argument("--top-p", type=float, default=None, help="1.0 = off")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--beam-width", type=int, default=None)
    p.add_argument(
        "--xla",
        action="store_true",
        help="compile the decoding loop with XLA (faster; samples differ from non-XLA ones)",
    )


def _add_texts_arg(p, name="--text", what="text"):
    p.add_argument(
        name,
        dest="texts",
        action="append",
        default=None,
        help=f"{what} (repeatable; '-' or none reads one per line from stdin)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's native (C++) log lines, which are filtered out by default",
    )
    parser = argparse.ArgumentParser(
        prog="textrnn", description=__doc__.split("\n")[0], parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "quickstart", parents=[common], help="offline demo on text that ships with Python"
    )
    p.add_argument("--minutes", type=float, default=1.0, help="training time budget")
    p.add_argument("--run-dir", default=None, help="where to keep the run (default: a temp dir)")

    p = sub.add_parser("train", parents=[common], help="train a model from a recipe")
    p.add_argument(
        "task",
        choices=task_registry.task_names(),
        help="; ".join(
            f"{name}: {task_registry.get_task(name).description}"
            for name in task_registry.task_names()
        ),
    )
    p.add_argument("--recipe", required=True, help="TOML recipe, e.g. models/<name>/config.toml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value (repeatable); unknown keys are errors",
    )
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output (default: a progress bar on a terminal, one plain line "
        "per epoch when the output is redirected)",
    )

    p = sub.add_parser("evaluate", parents=[common], help="the run's figures on a split")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--split", default=None, help="sentiment / translation: the split to score")
    p.add_argument("--output", default=None, help="also write the figures as JSON here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--dataset", default=None, help="character LM: name or path")
    p.add_argument("--num-windows", type=int, default=2000, help="character LM")
    p.add_argument("--hypotheses", default=None, help="translation: write the outputs here")
    p.add_argument(
        "--per-sentence",
        default=None,
        help="translation: write a TSV of sentence BLEU (nltk, smoothed), source, reference, "
        "hypothesis, worst first",
    )
    p.add_argument("--length-penalty", type=float, default=None, help="translation: GNMT alpha")
    _add_strategy_args(p)

    p = sub.add_parser("generate", parents=[common], help="character LM: continue a prompt")
    p.add_argument("--run-dir", required=True)
    _add_texts_arg(p, "--prompt", "prompt text")
    p.add_argument("--length", type=int, default=None, help="characters to generate")
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="> 1 discourages characters already generated (sampling)",
    )
    _add_strategy_args(p)

    p = sub.add_parser(
        "predict", parents=[common], help="sentiment: label and probabilities of texts"
    )
    p.add_argument("--run-dir", required=True)
    _add_texts_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = sub.add_parser(
        "explain", parents=[common], help="sentiment: which tokens an attention model attended to"
    )
    p.add_argument("--run-dir", required=True)
    _add_texts_arg(p)
    p.add_argument("--plot", default=None, help="also draw the weights of the first text (PNG)")

    p = sub.add_parser("translate", parents=[common], help="translation: translate sentences")
    p.add_argument("--run-dir", required=True)
    _add_texts_arg(p, what="source sentence")
    _add_strategy_args(p)
    p.add_argument("--n-best", type=int, default=None, help="beam search: hypotheses to show")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT alpha (0 = off)")
    p.add_argument("--max-length", type=int, default=None, help="cap on generated tokens")
    p.add_argument("--attention-plot", default=None, help="heatmap of the first sentence (PNG)")

    p = sub.add_parser(
        "export", parents=[common], help="write a SavedModel (strings in, strings out)"
    )
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--beam-width", type=int, default=5, help="character LM: beam signature")
    p.add_argument(
        "--xla",
        action="store_true",
        help="generating models: XLA-compile the decoding loops in the export (the server "
        "must run XLA: TF Serving --xla_cpu_compilation_enabled=true)",
    )
    return parser


def _read_texts(texts, what="text"):
    """The texts given on the command line, or one per line from stdin (blank lines at
    the end of the input are not texts).

    Raises:
        ValueError: an argument or standard input is not valid UTF-8 (naming the byte
            offset), or no text is given.
    """
    if texts and texts != ["-"]:
        return [_argument_text(text, i, what) for i, text in enumerate(texts)]
    data = sys.stdin.buffer.read()
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"Standard input is not valid UTF-8: byte {data[e.start : e.start + 1]!r} at "
            f"offset {e.start}."
        ) from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"No {what} given (use the option or one per line on stdin).")
    return lines


def _argument_text(text: str, index: int, what: str) -> str:
    """A command-line argument as text; Python decodes undecodable argument bytes to
    lone surrogates (U+DC80-U+DCFF), which are reported here like bad bytes on stdin."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        data = os.fsencode(text)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"The {what} given as argument {index + 1} is not valid UTF-8: byte "
                f"{data[e.start : e.start + 1]!r} at offset {e.start}."
            ) from None
        raise ValueError(f"The {what} given as argument {index + 1} is not valid text.") from None


def _task_name(cfg) -> str:
    return task_registry.task_of(cfg) if cfg is not None else task_registry.DEFAULT_TASK


def _load(run_dir, *expected):
    """Loads a run and checks that it is one of the `expected` tasks (any when none given)."""
    model, tokenizer, cfg = load_run(run_dir)
    task = _task_name(cfg)
    if expected and task not in expected:
        verb = task_registry.get_task(task).use_verb
        raise ValueError(f"{run_dir} holds a {task!r} run; use `textrnn {verb}` with it.")
    return model, tokenizer, cfg


def _write_json(path, figures):
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)


def _cmd_quickstart(args):
    run_quickstart(minutes=args.minutes, run_dir=args.run_dir)


def _progress_verbosity(quiet: bool) -> int:
    """Keras verbosity: 0 when quiet; the live bar (1) only on a terminal, since it draws
    with carriage returns and colour codes; otherwise one plain line per epoch (2)."""
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _cmd_train(args):
    cfg = load_config(args.recipe, args.overrides, task=args.task)
    task = task_registry.get_task(args.task)
    verbose = _progress_verbosity(args.quiet)
    results = task.train(cfg, args.run_dir, resume=args.resume, verbose=verbose)
    if args.json:
        print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
    else:
        print(task.summarize(results))
        print(f"every figure: {Path(args.run_dir) / 'results.json'}")


def _decoding_args(args) -> dict:
    """The decoding options given on the command line (None where not given)."""
    return {
        "strategy": args.strategy,
        "beam_width": args.beam_width,
        "n_best": getattr(args, "n_best", None),
        "alpha": args.length_penalty,
        "max_length": getattr(args, "max_length", None),
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
    }


def _cmd_evaluate(args):
    model, tokenizer, cfg = _load(args.run_dir)
    options = task_registry.EvaluateOptions(
        split=args.split,
        dataset=args.dataset,
        num_windows=args.num_windows,
        decoding=_decoding_args(args),
        jit_compile=args.xla,
        hypotheses_path=args.hypotheses,
        per_sentence_path=args.per_sentence,
    )
    evaluation = task_registry.get_task(_task_name(cfg)).evaluate(model, tokenizer, cfg, options)
    for note in evaluation.notes:
        print(note, file=sys.stderr)
    print(json.dumps(evaluation.figures, indent=2) if args.json else evaluation.report)
    _write_json(args.output, evaluation.figures)


def _cmd_generate(args):
    model, tokenizer, cfg = _load(args.run_dir, "charlm")
    defaults = cfg.generate if cfg else GenerateConfig()
    texts = generate(
        model,
        tokenizer,
        _read_texts(args.texts, "prompt"),
        strategy=args.strategy or defaults.strategy,
        max_length=args.length if args.length is not None else defaults.max_length,
        temperature=args.temperature if args.temperature is not None else defaults.temperature,
        top_k=args.top_k if args.top_k is not None else defaults.top_k,
        top_p=args.top_p if args.top_p is not None else defaults.top_p,
        seed=args.seed if args.seed is not None else defaults.seed,
        beam_width=args.beam_width or 5,
        repetition_penalty=args.repetition_penalty,
        jit_compile=args.xla,
    )
    for i, text in enumerate(texts):
        if len(texts) > 1:
            print(f"----- {i + 1}")
        print(text)


def _predictor(run_dir):
    return make_predictor(*_load(run_dir, "sentiment"))


def _cmd_predict(args):
    predictor = _predictor(args.run_dir)
    texts = _read_texts(args.texts)
    for text, result in zip(texts, predictor.predict_texts(texts)):
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
        else:
            p = result["probabilities"][result["label"]]
            print(f"{result['label']}\t{p:.3f}\t{text}")


def _cmd_explain(args):
    predictor = _predictor(args.run_dir)
    texts = _read_texts(args.texts)
    results = predictor.explain_texts(texts)
    for text, result in zip(texts, results):
        p = result["probabilities"][result["label"]]
        print(f"{result['label']} ({p:.3f}): {text}")
        print(format_token_weights(result["tokens"], result["weights"]))
        print()
    if args.plot:
        first = results[0]
        title = f"{first['label']} ({first['probabilities'][first['label']]:.3f})"
        print(
            f"plot written to {plot_token_weights(first['tokens'], first['weights'], args.plot, title=title)}"
        )


def _cmd_translate(args):
    model, tokenizers, cfg = _load(args.run_dir, "translate")
    translator = make_translator(model, tokenizers, cfg, jit_compile=args.xla)
    texts = _read_texts(args.texts, "source sentence")
    options = decoding_options(cfg.translate, **_decoding_args(args))
    results = translator.translate_texts(texts, **options)
    for i, (text, result) in enumerate(zip(texts, results)):
        if len(texts) > 1:
            print(f"----- {i + 1}: {text}")
        if options["strategy"] == "beam" and options["n_best"] > 1:
            # The score beam search ranks by: log-probability with the length penalty.
            print(f"rank\tscore (log-prob, length penalty alpha={options['alpha']:g})\ttranslation")
            for rank, (hyp, score) in enumerate(zip(result["n_best"], result["n_best_scores"])):
                print(f"{rank + 1}\t{score:.3f}\t{hyp}")
        else:
            print(result["translation"])
    if args.attention_plot:
        first = results[0]
        path = plot_attention(
            first["attention"],
            first["source_tokens"],
            first["target_tokens"],
            args.attention_plot,
            title=first["translation"],
        )
        print(f"attention plot written to {path}")


def _cmd_export(args):
    model, tokenizer, cfg = _load(args.run_dir)
    options = task_registry.ExportOptions(beam_width=args.beam_width, jit_compile=args.xla)
    out = task_registry.get_task(_task_name(cfg)).export(model, tokenizer, cfg, args.out, options)
    print(f"SavedModel written to {out}")


COMMANDS = {
    "quickstart": _cmd_quickstart,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "generate": _cmd_generate,
    "predict": _cmd_predict,
    "explain": _cmd_explain,
    "translate": _cmd_translate,
    "export": _cmd_export,
}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on the command line: one line, without the source line Python adds."""
    print(f"textrnn: warning: {message}", file=file or sys.stderr)


def main(argv=None) -> int:
    """Entry point of the `textrnn` console script. Returns the exit status."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores Python's own display when main returns
        warnings.showwarning = _show_warning
        try:
            COMMANDS[args.command](args)
        except (
            ValueError,
            FileNotFoundError,
            FileExistsError,
            RuntimeError,
            UnicodeDecodeError,
        ) as e:
            print(f"textrnn {args.command}: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
