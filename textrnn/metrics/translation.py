"""Translation metrics: sacreBLEU corpus scores and a comparable lowercased-token BLEU.

Two protocols, because they answer different questions:

- `corpus_scores`: the number to report. sacreBLEU's corpus BLEU with its default settings
  (13a tokenisation, case-sensitive, exponential smoothing) and chrF, on detokenised text,
  with signature strings that say exactly how they were computed.
- `lowercase_tokenized_bleu`: the number to compare with tutorials such as the
  bentrevett/pytorch-seq2seq notebooks (torchtext's `bleu_score` on lowercased tokens):
  corpus BLEU-4, uniform weights, no smoothing, brevity penalty. It is usually several points
  higher than `corpus_scores` on the same output and is not comparable with it.

`sentence_bleu` is a smoothed per-sentence score for inspecting individual translations;
never average it to get a corpus score.

All functions take one reference per hypothesis, as strings (bytes are decoded as UTF-8).
"""

from __future__ import annotations

import warnings

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

_TOKENIZER = Tokenizer13a()

LOWERCASE_TOKENIZED_PROTOCOL = (
    "Corpus BLEU-4 (uniform weights, no smoothing, brevity penalty) on lowercased text "
    "tokenised with sacreBLEU's 13a tokenizer, one reference per sentence, as in the "
    "bentrevett/pytorch-seq2seq notebooks; not comparable with sacreBLEU's detokenised BLEU."
)


def _as_text(value, where):
    """Returns `value` as `str`; `where` names it in errors (e.g. "hypotheses[3]")."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"Expected UTF-8 text for `{where}`. Received undecodable bytes: "
                f"{where}={value!r:.80} ({error.reason} at byte {error.start})"
            ) from None
    if isinstance(value, str):
        return str(value)  # also turns numpy.str_ into str
    raise TypeError(
        f"Expected a str (or UTF-8 bytes) for `{where}`. "
        f"Received: {where}={value!r:.80} of type {type(value).__name__}"
    )


def _as_sentences(values, name):
    if isinstance(values, (str, bytes)):
        raise TypeError(
            f"Expected a sequence of sentences for `{name}`, not a single string. "
            f"Received: {name}={values!r:.80}"
        )
    if hasattr(values, "numpy"):  # a tf.Tensor of strings
        values = values.numpy()
    if hasattr(values, "tolist"):  # a numpy array
        values = values.tolist()
    return [_as_text(value, f"{name}[{index}]") for index, value in enumerate(values)]


def _check_pair(hypotheses, references):
    hyps = _as_sentences(hypotheses, "hypotheses")
    refs = _as_sentences(references, "references")
    if len(hyps) != len(refs):
        raise ValueError(
            "Expected one reference per hypothesis. "
            f"Received: {len(hyps)} hypotheses and {len(refs)} references"
        )
    if not hyps:
        raise ValueError("Expected at least one sentence. Received: 0 hypotheses")
    return hyps, refs


def _lower_tokens(sentence):
    return _TOKENIZER(sentence.lower()).split()


def corpus_scores(hypotheses, references) -> dict:
    """sacreBLEU corpus BLEU and chrF with default settings, on detokenised text.

    BLEU uses sacreBLEU's defaults: 13a tokenisation, case-sensitive, exponential smoothing
    (which only matters when an n-gram order has no match in the whole corpus). chrF uses
    character 6-grams and beta 2.

    Args:
        hypotheses: detokenised system outputs, one string (or UTF-8 bytes) per sentence.
        references: detokenised references, one per hypothesis.

    Returns:
        A dict with `bleu` (0-100), `bleu_signature` (e.g.
        `"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"`), `chrf` (0-100),
        `chrf_signature`, `bleu_details` (`precisions`: the four modified n-gram precisions
        in percent, `bp`: brevity penalty, `sys_len` and `ref_len` in tokens) and
        `num_sentences`.

    Raises:
        ValueError: if the counts differ (the error names both), there are no sentences, or
            bytes are not valid UTF-8.
        TypeError: if a sentence is neither `str` nor `bytes`, or a single string is passed
            instead of a sequence.

    Example:
        >>> scores = corpus_scores(["The cat sat on the mat."], ["The cat sat on the mat."])
        >>> round(scores["bleu"], 6), scores["bleu_signature"].startswith("nrefs:1|case:mixed")
        (100.0, True)
    """
    hyps, refs = _check_pair(hypotheses, references)
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(hyps, [refs])
    chrf_score = chrf.corpus_score(hyps, [refs])
    return {
        "bleu": float(bleu_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": float(chrf_score.score),
        "chrf_signature": str(chrf.get_signature()),
        "bleu_details": {
            "precisions": [float(p) for p in bleu_score.precisions],
            "bp": float(bleu_score.bp),
            "sys_len": int(bleu_score.sys_len),
            "ref_len": int(bleu_score.ref_len),
        },
        "num_sentences": len(hyps),
    }


def lowercase_tokenized_bleu(hypotheses, references) -> dict:
    """Corpus BLEU-4 on lowercased 13a tokens, for comparison with tutorial results.

    Both sides are lower-cased, then tokenised with sacreBLEU's 13a tokenizer. The score is
    computed by sacreBLEU (`BLEU(tokenize="none", lowercase=False, smooth_method="none")` on
    the space-joined tokens) and, as an independent cross-check, by
    `nltk.translate.bleu_score.corpus_bleu` on the same token lists (uniform weights, no
    smoothing). The two agree to floating-point precision when every n-gram order has at
    least one match and every hypothesis has at least four tokens. They differ otherwise:
    NLTK counts a hypothesis shorter than n as one (unmatched) n-gram, lowering its
    precision, and without matches NLTK returns a tiny positive number where sacreBLEU
    returns 0. The sacreBLEU value (`bleu`) is the one to report; it counts n-grams like
    torchtext's `bleu_score`, which the bentrevett notebooks use (they tokenise with spaCy,
    so expect small differences from tokenisation).

    Args:
        hypotheses: system outputs, one string (or UTF-8 bytes) per sentence.
        references: references, one per hypothesis.

    Returns:
        A dict with `bleu` (sacreBLEU, 0-100), `nltk_bleu` (NLTK, scaled to 0-100),
        `signature` (sacreBLEU's; it reads `tok:none` and `case:mixed` because the text is
        lowercased and tokenised before sacreBLEU sees it, as `protocol` describes) and `protocol` (a one-sentence description).

    Raises:
        ValueError: if the counts differ (the error names both), there are no sentences, or
            bytes are not valid UTF-8.
        TypeError: if a sentence is neither `str` nor `bytes`.

    Example:
        >>> scores = lowercase_tokenized_bleu(["The cat sat on the mat!"], ["the cat sat on the mat !"])
        >>> round(scores["bleu"], 6), round(scores["nltk_bleu"], 6)
        (100.0, 100.0)
    """
    hyps, refs = _check_pair(hypotheses, references)
    hyp_tokens = [_lower_tokens(sentence) for sentence in hyps]
    ref_tokens = [_lower_tokens(sentence) for sentence in refs]
    # force: the text is tokenised on purpose; sacreBLEU would warn that it looks tokenised.
    bleu = BLEU(tokenize="none", lowercase=False, smooth_method="none", force=True)
    score = bleu.corpus_score(
        [" ".join(tokens) for tokens in hyp_tokens], [[" ".join(tokens) for tokens in ref_tokens]]
    )
    from nltk.translate import bleu_score as nltk_bleu  # imported late: 0.5 s at import

    with warnings.catch_warnings():
        # NLTK warns when an n-gram order has no match; the docstring covers that case.
        warnings.simplefilter("ignore", UserWarning)
        nltk_value = nltk_bleu.corpus_bleu([[tokens] for tokens in ref_tokens], hyp_tokens)
    return {
        "bleu": float(score.score),
        "nltk_bleu": float(nltk_value) * 100.0,
        "signature": str(bleu.get_signature()),
        "protocol": LOWERCASE_TOKENIZED_PROTOCOL,
    }


def sentence_bleu(hypothesis, reference) -> float:
    """Smoothed sentence-level BLEU-4 (0-100) on lowercased 13a tokens, for inspection.

    Uses `nltk.translate.bleu_score.sentence_bleu` with uniform weights and Chen & Cherry
    (2014) smoothing method 1 (`SmoothingFunction().method1`): an n-gram order with no
    match gets precision 0.1 / (number of hypothesis n-grams) instead of 0, so one missing
    4-gram does not zero the score. A sentence shorter than four tokens therefore cannot
    reach 100 even when it matches exactly, and a hypothesis with no unigram match scores 0.

    Args:
        hypothesis: one system output (string or UTF-8 bytes).
        reference: its reference.

    Returns:
        The score as a float in [0, 100].

    Raises:
        ValueError: if bytes are not valid UTF-8.
        TypeError: if either argument is neither `str` nor `bytes`.

    Example:
        >>> round(sentence_bleu("The cat sat on the mat.", "the cat sat on a mat ."), 2)
        48.89
    """
    hyp = _as_text(hypothesis, "hypothesis")
    ref = _as_text(reference, "reference")
    from nltk.translate import bleu_score as nltk_bleu

    value = nltk_bleu.sentence_bleu(
        [_lower_tokens(ref)],
        _lower_tokens(hyp),
        smoothing_function=nltk_bleu.SmoothingFunction().method1,
    )
    return float(value) * 100.0
