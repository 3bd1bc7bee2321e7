"""Scoring a character language model: validation loss in nats and bits per character,
by the window protocol and sequentially (see `textrnn.metrics.lm_evaluation`)."""

from __future__ import annotations

import math

from textrnn.charlm.data import load_char_corpus
from textrnn.metrics import lm_evaluation
from textrnn.training.task_registry import EvaluateOptions, Evaluation


def evaluate_charlm(model, ids, seq_len=256, num_windows=2000, seed=0) -> dict:
    """Validation figures both ways (see `textrnn.metrics.lm_evaluation`), nats and bits per char."""
    windows = lm_evaluation.window_loss(
        model, ids, seq_len=seq_len, num_windows=num_windows, seed=seed
    )
    sequential = lm_evaluation.sequential_loss(model, ids)
    return {
        "val_loss_windows": round(windows, 4),
        "val_bpc_windows": round(lm_evaluation.bits_per_char(windows), 4),
        "val_loss_sequential": round(sequential, 4),
        "val_bpc_sequential": round(lm_evaluation.bits_per_char(sequential), 4),
        # exp overflows past ~709 nats: a diverged model's perplexity is infinite.
        "val_perplexity_sequential": round(math.exp(sequential), 3)
        if sequential < 709.0
        else math.inf,
        "window_protocol": f"{num_windows} random windows of {seq_len} chars, seed {seed}",
    }


def evaluate_run(model, tokenizer, cfg, options: EvaluateOptions | None = None) -> Evaluation:
    """The run's validation figures on `options.dataset` (default: the recipe's).

    What `textrnn evaluate` calls for a character-LM run (through the task registry).
    Validation characters outside the vocabulary are scored as `<unk>` and named in a note.

    Raises:
        ValueError: no dataset given and no recipe in the run directory.

    Example:
        >>> evaluate_run(*load_run("runs/shakes")).figures["val_bpc_windows"]
    """
    options = options or EvaluateOptions()
    dataset = options.dataset or (cfg.data.dataset if cfg else None)
    if dataset is None:
        raise ValueError("no recipe in the run directory; pass --dataset.")
    seq_len = cfg.data.seq_len if cfg else 256
    text = load_char_corpus(dataset)["validation"]
    notes = []
    unknown = tokenizer.unknown_characters(text)
    if unknown:
        notes.append(
            f"note: {len(unknown)} validation characters are not in the vocabulary "
            f"and are scored as <unk>: {unknown[:20]!r}"
        )
    figures = evaluate_charlm(
        model, tokenizer.encode_text(text), seq_len=seq_len, num_windows=options.num_windows
    )
    figures["dataset"] = dataset
    return Evaluation(figures, describe_figures(figures), tuple(notes))


def describe_figures(figures: dict) -> str:
    """Two lines on `evaluate_charlm`'s figures, for the terminal.

    Example:
        >>> print(describe_figures(evaluate_charlm(model, ids, seq_len=256)))
        validation: 1.4767 nats/char (2.130 bits/char), 2000 random windows of 256 chars, seed 0
        validation, sequential: 1.4400 nats/char (2.077 bits/char), perplexity 4.221
    """
    where = f"{figures['dataset']} validation" if "dataset" in figures else "validation"
    return (
        f"{where}: {figures['val_loss_windows']:.4f} nats/char "
        f"({figures['val_bpc_windows']:.3f} bits/char), {figures['window_protocol']}\n"
        f"{where}, sequential: {figures['val_loss_sequential']:.4f} nats/char "
        f"({figures['val_bpc_sequential']:.3f} bits/char), perplexity "
        f"{figures['val_perplexity_sequential']:.3f}"
    )
