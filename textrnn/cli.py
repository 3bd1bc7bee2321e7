"""The `textrnn` command line: a thin layer over the Python API.

textrnn quickstart                      # offline demo: 1 minute of training, then text
textrnn train charlm --recipe models/charlm-shakespeare/config.toml --run-dir runs/shakes
textrnn train charlm ... --resume        # continue after a kill
textrnn evaluate --run-dir runs/shakes
textrnn generate --run-dir runs/shakes --prompt "ROMEO:" --length 300 --strategy sample
textrnn export --run-dir runs/shakes --out exports/shakes
"""

from __future__ import annotations

import argparse
import json
import sys


def _add_strategy_args(p):
    p.add_argument(
        "--strategy",
        choices=["greedy", "sample", "beam"],
        default=None,
        help="decoding strategy (default: the recipe's [generate] section)",
    )
    p.add_argument("--length", type=int, default=None, help="characters to generate")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None, help="0 = off")
    p.add_argument("--top-p", type=float, default=None, help="1.0 = off")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="> 1 discourages characters already generated (sampling)",
    )
    p.add_argument("--beam-width", type=int, default=5)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("quickstart", help="offline demo on text that ships with Python")
    p.add_argument("--minutes", type=float, default=1.0, help="training time budget")
    p.add_argument("--run-dir", default=None, help="where to keep the run (default: a temp dir)")

    p = sub.add_parser("train", help="train a model from a recipe")
    p.add_argument("task", choices=["charlm"])
    p.add_argument(
        "--recipe", required=True, help="TOML recipe, e.g. models/charlm-shakespeare/config.toml"
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
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("evaluate", help="validation loss (nats and bits per char) two ways")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--dataset", default=None, help="name or path (default: the recipe's)")
    p.add_argument("--num-windows", type=int, default=2000)
    p.add_argument("--output", default=None, help="also write the figures as JSON here")

    p = sub.add_parser("generate", help="generate text from a prompt")
    p.add_argument("--run-dir", required=True)
    p.add_argument(
        "--prompt",
        action="append",
        default=None,
        help="prompt text (repeatable; '-' or none reads one prompt per line from stdin)",
    )
    _add_strategy_args(p)

    p = sub.add_parser("export", help="write a SavedModel (strings in, strings out)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--beam-width", type=int, default=5)
    return parser


def _cmd_quickstart(args):
    from textrnn.quickstart import run_quickstart

    run_quickstart(minutes=args.minutes, run_dir=args.run_dir)


def _cmd_train(args):
    from textrnn.charlm_training import train_charlm
    from textrnn.config import load_config

    cfg = load_config(args.recipe, args.overrides, task=args.task)
    results = train_charlm(cfg, args.run_dir, resume=args.resume, verbose=0 if args.quiet else 1)
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))


def _cmd_evaluate(args):
    from textrnn import datasets
    from textrnn.charlm_training import evaluate_charlm
    from textrnn.training import load_run

    model, tokenizer, cfg = load_run(args.run_dir)
    dataset = args.dataset or (cfg.data.dataset if cfg else None)
    if dataset is None:
        raise SystemExit("textrnn evaluate: no recipe in the run directory; pass --dataset.")
    seq_len = cfg.data.seq_len if cfg else 256
    text = datasets.load_char_corpus(dataset)["validation"]
    unknown = tokenizer.unknown_characters(text)
    if unknown:
        print(
            f"note: {len(unknown)} validation characters are not in the vocabulary "
            f"and are scored as <unk>: {unknown[:20]!r}",
            file=sys.stderr,
        )
    results = evaluate_charlm(
        model, tokenizer.encode_text(text), seq_len=seq_len, num_windows=args.num_windows
    )
    results["dataset"] = dataset
    print(json.dumps(results, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)


def _cmd_generate(args):
    from textrnn.char_generation import generate
    from textrnn.config import GenerateConfig
    from textrnn.training import load_run

    model, tokenizer, cfg = load_run(args.run_dir)
    defaults = cfg.generate if cfg else GenerateConfig()
    prompts = args.prompt
    if not prompts or prompts == ["-"]:
        prompts = [
            line.rstrip("\n")
            for line in sys.stdin.buffer.read().decode("utf-8", "strict").splitlines()
        ]
        if not prompts:
            raise SystemExit("textrnn generate: no prompt given (use --prompt or stdin).")
    texts = generate(
        model,
        tokenizer,
        prompts,
        strategy=args.strategy or defaults.strategy,
        max_length=args.length if args.length is not None else defaults.max_length,
        temperature=args.temperature if args.temperature is not None else defaults.temperature,
        top_k=args.top_k if args.top_k is not None else defaults.top_k,
        top_p=args.top_p if args.top_p is not None else defaults.top_p,
        seed=args.seed if args.seed is not None else defaults.seed,
        beam_width=args.beam_width,
        repetition_penalty=args.repetition_penalty,
    )
    for i, text in enumerate(texts):
        if len(texts) > 1:
            print(f"----- {i + 1}")
        print(text)


def _cmd_export(args):
    from textrnn.export import export_charlm
    from textrnn.training import load_run

    model, tokenizer, cfg = load_run(args.run_dir)
    out = export_charlm(
        model, tokenizer, args.out, cfg.generate if cfg else None, beam_width=args.beam_width
    )
    print(f"SavedModel written to {out}")


COMMANDS = {
    "quickstart": _cmd_quickstart,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "generate": _cmd_generate,
    "export": _cmd_export,
}


def main(argv=None) -> int:
    """Entry point of the `textrnn` console script. Returns the exit status."""
    args = build_parser().parse_args(argv)
    import textrnn  # noqa: F401  (selects the TensorFlow backend before Keras loads)

    try:
        COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, UnicodeDecodeError) as e:
        print(f"textrnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
