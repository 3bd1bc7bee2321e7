import math
import re
from collections import Counter

import numpy as np
import pytest

from textrnn.metrics.translation import corpus_scores, lowercase_tokenized_bleu, sentence_bleu


def _brute_force_bleu(hyp_tokens, ref_tokens, max_order=4):
    """Corpus BLEU from its definition: clipped n-gram counts summed over the corpus,
    geometric mean of the four precisions, brevity penalty exp(1 - r / c) when c < r."""
    matches, totals = [0] * max_order, [0] * max_order
    for hyp, ref in zip(hyp_tokens, ref_tokens):
        for n in range(1, max_order + 1):
            hyp_ngrams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
            ref_ngrams = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(c, ref_ngrams[g]) for g, c in hyp_ngrams.items())
            totals[n - 1] += sum(hyp_ngrams.values())
    c = sum(len(h) for h in hyp_tokens)
    r = sum(len(t) for t in ref_tokens)
    precisions = [m / t for m, t in zip(matches, totals)]
    bp = 1.0 if c >= r else math.exp(1 - r / c)
    return 100 * bp * math.exp(sum(math.log(p) for p in precisions) / max_order), precisions, bp


# Plain lowercase words without punctuation: 13a tokenisation is whitespace splitting.
HYPS = ["the cat is on the mat", "there is a dog in the garden today", "he reads a good book"]
REFS = ["the cat sat on the mat", "a dog is in the garden today", "he is reading a very good book"]


def test_perfect_translation_scores_100():
    sentences = ["The cat sat on the mat.", "Wie geht's dir, Anna?", "It costs $3.50 (approx.)!"]
    scores = corpus_scores(sentences, list(sentences))
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["bleu_details"]["bp"] == 1.0
    assert scores["bleu_details"]["precisions"] == pytest.approx([100.0] * 4)
    assert scores["num_sentences"] == 3
    lowered = lowercase_tokenized_bleu(sentences, sentences)
    assert lowered["bleu"] == pytest.approx(100.0) and lowered["nltk_bleu"] == pytest.approx(100.0)
    assert sentence_bleu(sentences[0], sentences[0]) == pytest.approx(100.0)


def test_corpus_bleu_equals_brute_force_definition():
    expected, precisions, bp = _brute_force_bleu(
        [h.split() for h in HYPS], [r.split() for r in REFS]
    )
    assert 0 < bp < 1  # the example exercises the brevity penalty
    scores = corpus_scores(HYPS, REFS)
    assert scores["bleu"] == pytest.approx(expected, rel=1e-6)
    assert scores["bleu_details"]["precisions"] == pytest.approx(
        [100 * p for p in precisions], rel=1e-6
    )
    assert scores["bleu_details"]["bp"] == pytest.approx(bp, rel=1e-9)
    assert scores["bleu_details"]["sys_len"] == sum(len(h.split()) for h in HYPS)
    assert scores["bleu_details"]["ref_len"] == sum(len(r.split()) for r in REFS)
    # Lower-case plain words: the lowercased-token protocol gives the same number.
    lowered = lowercase_tokenized_bleu(HYPS, REFS)
    assert lowered["bleu"] == pytest.approx(expected, rel=1e-6)
    assert lowered["nltk_bleu"] == pytest.approx(expected, rel=1e-6)


def test_lowercase_tokenized_bleu_equals_brute_force_on_13a_tokens():
    hyps = ["The cat, it seems, is on the mat.", "Is there a dog in the garden?"]
    refs = ["the cat seems to be on the mat .", "Is there a dog in the garden ?"]
    tokens = {  # 13a splits punctuation off words
        "hyp": [h.lower().replace(",", " ,").replace(".", " .").replace("?", " ?") for h in hyps],
        "ref": [r.lower().replace("?", " ?") for r in refs],
    }
    expected, _, _ = _brute_force_bleu(
        [h.split() for h in tokens["hyp"]], [r.split() for r in tokens["ref"]]
    )
    scores = lowercase_tokenized_bleu(hyps, refs)
    assert scores["bleu"] == pytest.approx(expected, rel=1e-6)
    assert scores["nltk_bleu"] == pytest.approx(expected, rel=1e-6)


def test_signatures_are_sacrebleu_strings():
    scores = corpus_scores(HYPS, REFS)
    for part in ("nrefs:1", "case:mixed", "tok:13a", "smooth:exp", "version:"):
        assert part in scores["bleu_signature"]
    for part in ("nrefs:1", "case:mixed", "nc:6", "nw:0", "version:"):
        assert part in scores["chrf_signature"]
    lowered = lowercase_tokenized_bleu(HYPS, REFS)
    for part in ("nrefs:1", "tok:none", "smooth:none"):
        assert part in lowered["signature"]
    assert "13a" in lowered["protocol"] and "lowercased" in lowered["protocol"]


def test_sacrebleu_and_nltk_agree_on_random_sentences():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(30)] + [",", ".", "!", "Hello", "World"]
    hyps, refs = [], []
    for _ in range(50):
        ref = list(rng.choice(vocab, size=int(rng.integers(5, 20))))
        hyp = [w if rng.random() < 0.7 else str(rng.choice(vocab)) for w in ref]
        if rng.random() < 0.5:
            hyp = hyp[: max(4, len(hyp) - int(rng.integers(0, 4)))]  # some brevity penalty
        hyps.append(" ".join(hyp))
        refs.append(" ".join(ref))
    scores = lowercase_tokenized_bleu(hyps, refs)
    assert 10 < scores["bleu"] < 90
    assert scores["nltk_bleu"] == pytest.approx(scores["bleu"], rel=1e-6)


def test_nltk_counts_short_hypotheses_differently():
    # Documented difference: a hypothesis with fewer than 4 tokens adds one unmatched
    # 4-gram to NLTK's denominator, but no 4-gram at all to sacreBLEU's.
    hyps, refs = ["a b c d e f", "yes ."], ["a b c d e f", "yes ."]
    scores = lowercase_tokenized_bleu(hyps, refs)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["nltk_bleu"] < scores["bleu"]


def test_case_and_spacing_only_matter_to_cased_detokenised_bleu():
    hyps = ["The Cat sat on the mat .", "Where is the dog ?"]
    refs = ["the cat sat on the mat.", "where is the dog?"]
    assert lowercase_tokenized_bleu(hyps, refs)["bleu"] == pytest.approx(100.0)
    assert corpus_scores(hyps, refs)["bleu"] < 90.0
    # Spacing alone is absorbed by 13a tokenisation; case alone is not.
    assert corpus_scores(["Where is the dog ?"], ["Where is the dog?"])["bleu"] == (
        pytest.approx(100.0)
    )
    assert corpus_scores(["where is the dog?"], ["Where is the dog?"])["bleu"] < 90.0


def test_sentence_bleu_is_smoothed_and_bounded():
    assert sentence_bleu("the cat sat on the mat", "The cat sat on the mat") == pytest.approx(100)
    partial = sentence_bleu("the cat sat on a rug", "the cat sat on the mat")
    assert 0 < partial < 100
    # No 4-gram match: smoothing keeps the score positive instead of 0.
    assert 0 < sentence_bleu("cat the mat sat", "the cat sat on the mat") < 20
    assert sentence_bleu("xyz", "the cat sat on the mat") == 0.0


def test_inputs_may_be_bytes_or_numpy_arrays():
    expected = corpus_scores(["Grüße aus Köln"], ["Grüße aus Bonn"])["bleu"]
    as_bytes = corpus_scores(["Grüße aus Köln".encode()], [b"Gr\xc3\xbc\xc3\x9fe aus Bonn"])
    assert as_bytes["bleu"] == pytest.approx(expected)
    as_array = corpus_scores(np.array(["Grüße aus Köln"]), np.array(["Grüße aus Bonn"]))
    assert as_array["bleu"] == pytest.approx(expected)
    assert sentence_bleu(b"a b c d", "a b c d") == pytest.approx(100.0)


def test_mismatched_counts_name_both():
    for function in (corpus_scores, lowercase_tokenized_bleu):
        with pytest.raises(ValueError, match="3 hypotheses and 2 references"):
            function(["a", "b", "c"], ["a", "b"])


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="at least one sentence"):
        corpus_scores([], [])
    with pytest.raises(ValueError, match=re.escape("hypotheses[1]")):
        corpus_scores(["ok", b"\xff\xfe bad"], ["ok", "fine"])
    with pytest.raises(TypeError, match=re.escape("references[0]")):
        lowercase_tokenized_bleu(["a"], [3])
    with pytest.raises(TypeError, match="single string"):
        corpus_scores("a whole sentence", "a whole sentence")
    with pytest.raises(TypeError, match="hypothesis"):
        sentence_bleu(["a", "list"], "a list")
