"""The `textrnn` command line: a thin layer over the Python API.

textrnn quickstart                      # offline demo: 1 minute of training, then text
textrnn train charlm|sentiment|translate --recipe models/<recipe>/config.toml --run-dir runs/x
textrnn train ... --resume               # continue after a kill
textrnn evaluate --run-dir runs/x        # the task's figures (loss, accuracy/F1, BLEU/chrF)
textrnn generate --run-dir runs/shakes --prompt "ROMEO:" --length 300 --strategy sample
textrnn predict --run-dir runs/sst2 --text "a gem of a film"      # or one text per stdin line
textrnn explain --run-dir runs/sst2 --text "a gem of a film" --plot weights.png
textrnn translate --run-dir runs/de-en --text "Ein Hund läuft." --beam-width 5 --n-best 3
textrnn export --run-dir runs/x --out exports/x  # writes exports/x/1, then 2, ...
textrnn serve --model-name shakes --model-base-path exports/shakes   # TF Serving's APIs
textrnn diagnose gradients --fresh rnn --fresh lstm --run-dir runs/shakes --out-png g.png
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
from textrnn.diagnostics import gradient_flow
from textrnn.diagnostics.attention_plot import (
    format_token_weights,
    plot_attention,
    plot_token_weights,
)
from textrnn.export.limits import ExportLimits
from textrnn.export.run_export import export_run_version
from textrnn.quickstart import run_quickstart
from textrnn.sentiment.predictor import make_predictor
from textrnn.training import task_registry
from textrnn.training.config import STRATEGIES, load_config
from textrnn.training.launch import train_task
from textrnn.training.runs import load_run, read_run_config
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
    p.add_argument(
        "--recipe",
        default=None,
        help="TOML recipe, e.g. models/<name>/config.toml (required unless --resume, which "
        "uses the run's own recipe when none is given)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value (repeatable); unknown keys are errors",
    )
    p.add_argument("--run-dir", required=True)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir exactly, from its newest good checkpoint",
    )
    p.add_argument("--seed", type=int, default=None, help="same as --set train.seed=N")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="TensorFlow op determinism: the same seed gives bit-identical weights "
        "(same as --set train.deterministic=true)",
    )
    p.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        default=None,
        help="tf.distribute strategy: default (one device), mirrored (every GPU of this "
        "machine) or multi_worker (the machines in TF_CONFIG); data.batch_size stays the "
        "global batch (same as --set train.strategy=NAME)",
    )
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
    p.add_argument(
        "--out",
        required=True,
        help="base directory (TensorFlow Serving's layout): the export becomes its next "
        "version, OUT/1, OUT/2, ...",
    )
    p.add_argument("--beam-width", type=int, default=5, help="character LM: beam signature")
    p.add_argument(
        "--xla",
        action="store_true",
        help="generating models: XLA-compile the decoding loops in the export (the server "
        "must run XLA: TF Serving --xla_cpu_compilation_enabled=true)",
    )
    p.add_argument(
        "--limit",
        dest="limits",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a cap every signature checks its inputs against (repeatable), e.g. "
        "max_new_tokens=4096 (default); all caps: textrnn.export.limits.ExportLimits",
    )
    _add_diagnose_parser(sub, common)
    _add_serve_parser(sub, common)
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
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    if args.deterministic:
        overrides.append("train.deterministic=true")
    if args.strategy is not None:
        overrides.append(f"train.strategy={args.strategy}")
    recipe = args.recipe
    if recipe is None:
        saved = Path(args.run_dir) / "config.toml"
        if not args.resume:
            raise ValueError("--recipe is required (unless --resume continues a run).")
        if not saved.is_file():
            raise ValueError(f"--resume given, but {saved} does not exist: no run to continue.")
        recipe = saved
    cfg = load_config(recipe, overrides, task=args.task)
    task = task_registry.get_task(args.task)
    verbose = _progress_verbosity(args.quiet)
    results = train_task(task, cfg, args.run_dir, resume=args.resume, verbose=verbose)
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
    options = task_registry.ExportOptions(
        beam_width=args.beam_width,
        jit_compile=args.xla,
        limits=ExportLimits.from_overrides(args.limits),
    )
    out = export_run_version(args.run_dir, args.out, options)
    print(f"SavedModel written to {out} (version {out.name} of {args.out})")


def _add_diagnose_parser(sub, common):
    p = sub.add_parser("diagnose", parents=[common], help="look inside the recurrence")
    what = p.add_subparsers(dest="diagnosis", required=True)
    g = what.add_parser(
        "gradients",
        parents=[common],
        help="character LM: mean |dL_T/dh_t| against the distance T - t (CSV and PNG)",
    )
    g.add_argument(
        "--run-dir",
        dest="run_dirs",
        action="append",
        default=[],
        help="a trained character-LM run (repeatable, e.g. one per checkpoint)",
    )
    g.add_argument(
        "--fresh",
        dest="fresh_cells",
        action="append",
        default=[],
        choices=["rnn", "lstm", "gru"],
        help="a freshly initialised model of this cell (repeatable)",
    )
    g.add_argument("--units", type=int, default=128, help="fresh models: hidden units")
    g.add_argument("--layers", type=int, default=1, help="fresh models: recurrent layers")
    g.add_argument("--window", type=int, default=200, help="T, steps per window")
    g.add_argument("--batch", type=int, default=32, help="windows averaged over")
    g.add_argument("--seed", type=int, default=0, help="window offsets and fresh weights")
    g.add_argument(
        "--corpus",
        default=None,
        help="name or text file whose validation part gives the windows (default: each "
        "run's own corpus; for fresh models the first run's, else tinyshakespeare)",
    )
    g.add_argument("--out-csv", default="gradient_flow.csv")
    g.add_argument("--out-png", default="gradient_flow.png")
    a = what.add_parser(
        "activations",
        parents=[common],
        help="character LM: unit activations over a text as coloured HTML / PNG, and the "
        "units most correlated with features of the text",
    )
    a.add_argument("--run-dir", required=True, help="a trained character-LM run")
    source = a.add_mutually_exclusive_group()
    source.add_argument("--text-file", default=None, help="read this UTF-8 file")
    source.add_argument(
        "--corpus",
        default=None,
        help="read this corpus's validation part (default: the run's own corpus)",
    )
    a.add_argument("--start", type=int, default=0, help="first character of the text")
    a.add_argument("--length", type=int, default=2000, help="characters read")
    a.add_argument("--layer", type=int, default=-1, help="recurrent layer (-1 = top)")
    a.add_argument(
        "--state",
        default="h",
        choices=["h", "c", "input", "forget", "output", "candidate", "update", "reset"],
        help="h; c (LSTM); a gate: input/forget/output/candidate (LSTM), update/reset/"
        "candidate (GRU)",
    )
    a.add_argument("--unit", type=int, default=None, help="the unit to draw")
    a.add_argument("--draw-length", type=int, default=None, help="draw only the first N characters")
    a.add_argument("--columns", type=int, default=80, help="PNG: characters per row")
    a.add_argument("--out-html", default=None)
    a.add_argument("--out-png", default=None)
    a.add_argument(
        "--search",
        action="store_true",
        help="print the units most correlated with each text feature (of --state)",
    )
    a.add_argument("--top-k", type=int, default=5, help="--search: units per feature")


def _cmd_diagnose(args):
    if args.diagnosis == "activations":
        return _cmd_diagnose_activations(args)
    if not args.run_dirs and not args.fresh_cells:
        raise ValueError("Nothing to measure: give --run-dir and/or --fresh CELL.")
    sizes = {"window": args.window, "batch": args.batch, "seed": args.seed}
    flows = [
        gradient_flow.measure_run(run_dir, corpus=args.corpus, **sizes) for run_dir in args.run_dirs
    ]
    corpus = args.corpus
    if corpus is None and args.fresh_cells:
        cfg = read_run_config(args.run_dirs[0]) if args.run_dirs else None
        corpus = cfg.data.dataset if cfg is not None else "tinyshakespeare"
    flows += [
        gradient_flow.measure_fresh(cell, corpus, units=args.units, num_layers=args.layers, **sizes)
        for cell in args.fresh_cells
    ]
    for flow in flows:
        print(gradient_flow.summarize(flow))
    print(f"CSV written to {gradient_flow.write_csv(flows, args.out_csv)}")
    print(f"plot written to {gradient_flow.plot_gradient_flow(flows, args.out_png)}")


def _cmd_diagnose_activations(args):
    from textrnn.diagnostics import activations

    if args.unit is None and not args.search:
        raise ValueError("Nothing to do: give --unit N (with --out-html / --out-png) or --search.")
    if args.unit is not None and not (args.out_html or args.out_png):
        raise ValueError("Give --out-html and/or --out-png to draw --unit.")
    if args.draw_length is not None and args.draw_length < 1:
        raise ValueError(f"Expected --draw-length >= 1. Received: {args.draw_length}")
    model, tokenizer, text = activations.run_and_text(
        args.run_dir,
        text_file=args.text_file,
        corpus=args.corpus,
        start=args.start,
        length=args.length,
    )
    acts = activations.unit_activations(model, tokenizer, text)
    values = acts.get(args.state, args.layer)
    where = f"layer {args.layer}, {args.state}, {len(text)} characters from {args.start}"
    if args.search:
        found = activations.top_units(values, activations.text_features(text), k=args.top_k)
        print(activations.format_search(found, f"top units by |Pearson r| ({where}):"))
    if args.unit is not None:
        unit = acts.unit(args.unit, args.state, args.layer)
        shown = text[: args.draw_length] if args.draw_length else text
        vmin, vmax = activations.value_range(args.state, unit)
        style = {"vmin": vmin, "vmax": vmax, "title": f"unit {args.unit} ({where})"}
        if args.out_html:
            path = activations.write_html(args.out_html, shown, unit[: len(shown)], **style)
            print(f"HTML written to {path}")
        if args.out_png:
            path = activations.plot_text_activations(
                shown, unit[: len(shown)], args.out_png, columns=args.columns, **style
            )
            print(f"plot written to {path}")


def _add_serve_parser(sub, common):
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve exports over TensorFlow Serving's REST and gRPC APIs",
    )
    p.add_argument("--model-name", default=None, help="the model's name in request paths")
    p.add_argument(
        "--model-base-path",
        default=None,
        help="its base directory (versions 1/, 2/, ...) or one SavedModel (version 1)",
    )
    p.add_argument(
        "--model-config-file",
        default=None,
        help="TensorFlow Serving's models.config (several models, version policies, labels)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--rest-port", type=int, default=8501, help="0 = any free port")
    p.add_argument("--grpc-port", type=int, default=8500, help="0 = any free port")
    p.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for versions")
    p.add_argument(
        "--limit",
        dest="limits",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a request cap (repeatable), e.g. deadline_seconds=30; all caps: "
        "textrnn.serving.limits.ServerLimits",
    )
    p.add_argument(
        "--enable-batching",
        action="store_true",
        help="merge concurrent requests with equal decoding parameters into one model call "
        "(off by default; see textrnn.serving.batching)",
    )
    p.add_argument(
        "--batching",
        dest="batching",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a batching parameter (repeatable; needs --enable-batching): max_batch_size, "
        "batch_timeout_micros, max_enqueued_batches, num_batch_threads",
    )


def _cmd_serve(args):
    try:
        from textrnn.serving.batching import BatchingOptions
        from textrnn.serving.limits import ServerLimits
        from textrnn.serving.model_config import read_model_config
        from textrnn.serving.models import ModelSpecConfig
        from textrnn.serving.server import serve
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"textrnn serve needs the `serve` extra ({error.name} is missing): "
            "pip install 'textrnn[serve]'"
        ) from None

    if args.model_config_file:
        if args.model_name or args.model_base_path:
            raise ValueError(
                "Give --model-config-file or --model-name/--model-base-path, not both."
            )
        configs = read_model_config(args.model_config_file)
    elif args.model_name and args.model_base_path:
        if not os.path.isdir(args.model_base_path):
            raise FileNotFoundError(f"No directory {args.model_base_path}")
        configs = [ModelSpecConfig(args.model_name, args.model_base_path)]
    else:
        raise ValueError("Give --model-name and --model-base-path (or --model-config-file).")
    limits = ServerLimits.from_overrides(args.limits)
    if args.batching and not args.enable_batching:
        raise ValueError("--batching sets batching parameters: give --enable-batching too.")
    batching = BatchingOptions.from_overrides(args.batching) if args.enable_batching else None
    status = serve(
        configs,
        host=args.host,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        limits=limits,
        poll_seconds=args.poll_seconds,
        batching=batching,
    )
    if status:
        raise RuntimeError(f"the server stopped with status {status}")


COMMANDS = {
    "quickstart": _cmd_quickstart,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "generate": _cmd_generate,
    "predict": _cmd_predict,
    "explain": _cmd_explain,
    "translate": _cmd_translate,
    "export": _cmd_export,
    "diagnose": _cmd_diagnose,
    "serve": _cmd_serve,
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
