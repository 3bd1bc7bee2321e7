"""Scoring a translator: translate a split and score it against its raw references
(sacreBLEU BLEU and chrF with signatures, and the lowercased tokenised BLEU)."""

from __future__ import annotations

import time

from textrnn.metrics.translation import corpus_scores, lowercase_tokenized_bleu, sentence_bleu
from textrnn.training.task_registry import EvaluateOptions, Evaluation
from textrnn.translation.config import decoding_options
from textrnn.translation.data import load_splits
from textrnn.translation.translator import make_translator


def evaluate_translation(
    model, tokenizers, cfg, split="test", splits=None, jit_compile=False, **options
):
    """Translates a split and scores it against its raw references.

    Args:
        model: a `Seq2Seq`.
        tokenizers: `(source_tokenizer, target_tokenizer)`.
        cfg: the run's `TranslationConfig`.
        split: `"train"`, `"validation"` or `"test"`.
        splits: already loaded splits (default: load the recipe's dataset).
        jit_compile: XLA-compile the decoding loop (see `Translator`).
        **options: decoding options of `Translator.translate_texts` (`strategy`,
            `beam_width`, `alpha`, ...).

    Returns:
        `(figures, hypotheses)`: sacreBLEU BLEU and chrF with signatures, the lowercased
        tokenised BLEU (with its nltk cross-check), decoding options and timing; and the
        translations, one per source sentence.
    """
    splits = splits or load_splits(cfg)
    if split not in splits:
        raise ValueError(f"Unknown split {split!r}; this dataset has {sorted(splits)}.")
    pairs = splits[split]
    translator = make_translator(model, tokenizers, cfg, jit_compile=jit_compile)
    start = time.perf_counter()
    results = translator.translate_texts(pairs.sources, warn=False, **options)
    seconds = time.perf_counter() - start
    hypotheses = [r["translation"] for r in results]
    scores = corpus_scores(hypotheses, pairs.targets)
    lowercase = lowercase_tokenized_bleu(hypotheses, pairs.targets)
    figures = {
        "split": split,
        "sentences": len(pairs),
        "decoding": dict(options),
        "bleu": round(scores["bleu"], 2),
        "chrf": round(scores["chrf"], 2),
        "bleu_signature": scores["bleu_signature"],
        "chrf_signature": scores["chrf_signature"],
        "lowercase_tokenized_bleu": round(lowercase["bleu"], 2),
        "lowercase_tokenized_bleu_nltk": round(lowercase["nltk_bleu"], 2),
        "lowercase_tokenized_protocol": lowercase["protocol"],
        "decode_seconds": round(seconds, 1),
        "sentences_per_second": round(len(pairs) / seconds, 1),
    }
    return figures, hypotheses


def evaluate_run(model, tokenizers, cfg, options: EvaluateOptions | None = None) -> Evaluation:
    """The run's translation figures on `options.split` (default: test).

    What `textrnn evaluate` calls for a translation run (through the task registry):
    decoding options not given in `options.decoding` are the recipe's `[translate]`
    ones; `options.hypotheses_path` receives the translations, one per line, and
    `options.per_sentence_path` a TSV of smoothed sentence BLEU (nltk), source, reference
    and hypothesis, worst first.

    Example:
        >>> evaluate_run(*load_run("runs/de-en"), EvaluateOptions(split="test")).figures["bleu"]
    """
    options = options or EvaluateOptions()
    decoding = decoding_options(cfg.translate, **dict(options.decoding))
    splits = load_splits(cfg)
    split = options.split or "test"
    figures, hypotheses = evaluate_translation(
        model,
        tokenizers,
        cfg,
        split=split,
        splits=splits,
        jit_compile=options.jit_compile,
        **decoding,
    )
    if options.hypotheses_path:
        with open(options.hypotheses_path, "w", encoding="utf-8") as f:
            f.writelines(h + "\n" for h in hypotheses)
    if options.per_sentence_path:
        pairs = splits[split]
        rows = sorted(
            (sentence_bleu(h, r), i, s, r, h)
            for i, (s, r, h) in enumerate(zip(pairs.sources, pairs.targets, hypotheses))
        )
        with open(options.per_sentence_path, "w", encoding="utf-8") as f:
            f.write("line\tsentence_bleu\tsource\treference\thypothesis\n")
            f.writelines(f"{i + 1}\t{b:.2f}\t{s}\t{r}\t{h}\n" for b, i, s, r, h in rows)
    return Evaluation(figures, describe_figures(figures))


def describe_figures(figures: dict) -> str:
    """One line on `evaluate_translation`'s figures, for the terminal.

    Example:
        >>> describe_figures(evaluate_translation(model, tokenizers, cfg)[0])
        'test (1,000 sentences, beam 5, alpha 0.6): sacreBLEU 38.96, chrF 62.17; ...'
    """
    decoding = figures["decoding"]
    how = decoding.get("strategy", "beam")
    if how == "beam":
        how = f"beam {decoding.get('beam_width')}, alpha {decoding.get('alpha')}"
    return (
        f"{figures['split']} ({figures['sentences']:,} sentences, {how}): "
        f"sacreBLEU {figures['bleu']:.2f}, chrF {figures['chrf']:.2f}; lowercased tokenised "
        f"BLEU {figures['lowercase_tokenized_bleu']:.2f}; {figures['sentences_per_second']:,} "
        f"sentences/s\n  {figures['bleu_signature']}"
    )
