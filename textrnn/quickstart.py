"""Offline quickstart: train a small character model on text that ships with Python.

The corpus is the documentation in `pydoc_data.topics` (the text behind `help()` on
keywords and topics; about 465,000 characters in every CPython install), so the demo
needs no download. It trains a one-layer GRU for a fixed wall-clock budget, reports the
validation loss, and prints a sample.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def pydoc_corpus() -> str:
    """The text of `pydoc_data.topics`, topics in sorted order."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def run_quickstart(minutes: float = 1.0, run_dir=None, prompt: str = "The ", print_fn=print):
    """Trains for `minutes` on the pydoc corpus, then prints generated text.

    Args:
        minutes: training wall-clock budget.
        run_dir: where to keep the run; a temporary directory by default.
        prompt: the prompt to continue.
        print_fn: where to print (tests pass a collector).

    Returns:
        `(results dict, generated text)`.
    """
    from textrnn.charlm.generator import generate
    from textrnn.charlm.train import train_charlm
    from textrnn.training.config import load_config
    from textrnn.training.runs import load_run

    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="textrnn-quickstart-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus_path = run_dir / "pydoc_topics.txt"
    corpus_path.write_text(pydoc_corpus(), encoding="utf-8")
    cfg = load_config(
        None,
        [
            f"data.dataset='{corpus_path}'",  # a TOML literal string: no escapes
            "data.seq_len=128",
            "data.batch_size=64",
            "model.cell=gru",
            "model.units=256",
            "train.epochs=1000",
            "train.steps_per_epoch=50",
            "train.lr_schedule=constant",
            "train.learning_rate=0.003",
            f"train.max_minutes={float(minutes)}",
            "train.validation_windows=64",
        ],
    )
    print_fn(
        f"textrnn quickstart: training a GRU for {minutes:g} min on the pydoc topics text "
        f"({corpus_path.stat().st_size:,} bytes); run directory {run_dir}"
    )
    results = train_charlm(cfg, run_dir / "run", verbose=0)
    print_fn(
        f"validation loss {results['val_loss_windows']:.3f} nats/char "
        f"({results['val_bpc_windows']:.3f} bits/char), {results['train_tokens']:,} training "
        f"characters at {results['train_tokens_per_second']:,.0f} chars/s"
    )
    model, tokenizer, _ = load_run(run_dir / "run")
    text = generate(
        model, tokenizer, prompt, strategy="sample", max_length=400, temperature=0.7, seed=0
    )[0]
    print_fn("---- sample (temperature 0.7) ----")
    print_fn(text)
    return results, text
