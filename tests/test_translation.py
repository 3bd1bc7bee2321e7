"""Translation end to end on the tiny de-en sample: training, decoding, awkward input,
evaluation, export and the command line."""

import csv
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_PARALLEL
from sacrebleu.metrics import BLEU, CHRF

from textrnn.cli import main
from textrnn.training.config import load_config
from textrnn.training.runs import load_run
from textrnn.translation.data import ParallelDataError
from textrnn.translation.evaluate import evaluate_translation
from textrnn.translation.export import export_translator
from textrnn.translation.model import Seq2Seq
from textrnn.translation.train import train_translation
from textrnn.translation.translator import make_translator

SOURCES = ["Ein Hund läuft im Park.", "Eine Katze schläft auf dem Sofa.", "Ein Mann liest."]


@pytest.fixture(scope="module")
def loaded(tiny_translation_run):
    return load_run(tiny_translation_run)


@pytest.fixture(scope="module")
def translator(loaded):
    return make_translator(*loaded)


def test_run_writes_everything_and_learns(tiny_translation_run, loaded):
    for name in (
        "config.toml",
        "source_vocab.txt",
        "source_vocab.txt.json",
        "target_vocab.txt",
        "model.keras",
        "history.csv",
        "progress.json",
        "results.json",
        "backup",
    ):
        assert (tiny_translation_run / name).exists(), name
    results = json.loads((tiny_translation_run / "results.json").read_text())
    assert results["monitor"] == "val_bleu" and results["train_pairs"] == 80
    assert "tok:13a" in results["validation"]["bleu_signature"]
    with open(tiny_translation_run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert {"val_bleu", "val_chrf", "token_accuracy"} <= set(history[0])
    assert float(history[-1]["loss"]) < float(history[0]["loss"]) - 0.2
    model, tokenizers, cfg = loaded
    assert isinstance(model, Seq2Seq) and cfg.data.source_language == "de"
    assert tokenizers[0].split_punctuation is False


def test_strategies_agree_where_they_must(translator):
    greedy = translator.run_strategy(SOURCES, "greedy", max_length=30)
    beam1 = translator.run_strategy(SOURCES, "beam", beam_width=1, alpha=0.0, max_length=30)
    np.testing.assert_array_equal(greedy["translation"], beam1["translation"])
    np.testing.assert_allclose(greedy["score"], beam1["score"], atol=1e-4)
    top1 = translator.run_strategy(SOURCES, "sample", top_k=1, max_length=30, seed=3)
    np.testing.assert_array_equal(greedy["translation"], top1["translation"])
    beam = translator.run_strategy(SOURCES, "beam", beam_width=4, n_best=3, max_length=30)
    assert beam["n_best"].shape == (3, 3)
    scores = beam["n_best_scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    np.testing.assert_array_equal(beam["n_best"][:, 0], beam["translation"])


def test_python_api_results(translator):
    results = translator.translate_texts(SOURCES[:2], beam_width=3, n_best=2, max_length=30)
    first = results[0]
    assert set(first) >= {"translation", "score", "n_best", "source_tokens", "attention"}
    assert first["n_best"][0] == first["translation"] and len(first["n_best"]) == 2
    assert first["attention"].shape == (len(first["target_tokens"]), len(first["source_tokens"]))
    np.testing.assert_allclose(first["attention"].sum(-1), 1.0, atol=1e-5)
    assert "".join(first["source_tokens"]).replace("##", "") == "".join(SOURCES[0].split())


def test_awkward_input(translator):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty, blank = translator.translate_texts(["", "   "], max_length=30)
    assert any("empty" in str(w.message) for w in caught)
    assert empty["translation"] == blank["translation"] == "" and empty["score"] == 0.0
    with pytest.raises(ValueError, match="offset 4"):
        translator.translate_texts([b"Ein \xff Hund"])
    out = translator.greedy(tf.constant([b"Ein \xff Hund"]), 30)  # in the graph: U+FFFD
    assert out["translation"].shape == (1,)
    # A source far longer than any training sentence: decoding stops at the length cap.
    long_source = " ".join(["Hund"] * 400)
    cfg = translator.defaults
    result = translator.run_strategy([long_source, "Ein Hund."], "greedy", max_length=10_000)
    source_tokens = int(tf.reduce_sum(tf.cast(result["source_tokens"][0] != b"", tf.int32)))
    cap = int(np.ceil(cfg.max_length_ratio * source_tokens)) + cfg.max_length_offset
    assert result["target_tokens"].shape[1] <= cap
    short = translator.run_strategy(["Ein Hund."], "greedy", max_length=10_000)
    short_tokens = int(tf.reduce_sum(tf.cast(short["source_tokens"][0] != b"", tf.int32)))
    assert short["target_tokens"].shape[1] <= 2 * short_tokens + cfg.max_length_offset
    # Characters never seen in training become <unk> pieces, never an error.
    (unknown,) = translator.translate_texts(["Ein Hund Ω漢字."], max_length=20)
    assert "<unk>" in unknown["source_tokens"]
    with pytest.raises(ValueError, match="strategy"):
        translator.translate_texts(["x"], strategy="nucleus")
    with pytest.raises(ValueError, match="n_best"):
        translator.translate_texts(["x"], beam_width=2, n_best=3)


def test_evaluate_translation_scores_against_raw_references(loaded):
    figures, hypotheses = evaluate_translation(
        *loaded, split="test", strategy="greedy", max_length=40
    )
    assert len(hypotheses) == figures["sentences"] == 12
    assert figures["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert 0 <= figures["bleu"] <= 100 and 0 <= figures["chrf"] <= 100
    assert abs(figures["lowercase_tokenized_bleu"] - figures["lowercase_tokenized_bleu_nltk"]) < 0.5
    # The references are the test file's lines exactly as written (cased, detokenised):
    # sacreBLEU on them, computed here, gives the reported figures; the tiny model's BLEU
    # may be 0 either way, its chrF is not.
    references = (TINY_PARALLEL / "test.en").read_text(encoding="utf-8").splitlines()
    assert figures["chrf"] > 0
    assert figures["chrf"] == round(CHRF().corpus_score(hypotheses, [references]).score, 2)
    assert figures["bleu"] == round(BLEU().corpus_score(hypotheses, [references]).score, 2)
    with pytest.raises(ValueError, match="Unknown split"):
        evaluate_translation(*loaded, split="dev")


def test_mismatched_parallel_files_are_reported_before_any_run_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.de", "train.en", "validation.de", "validation.en"):
        (data / name).write_text((TINY_PARALLEL / name).read_text(encoding="utf-8"))
    with open(data / "train.en", "a", encoding="utf-8") as f:
        f.write("One line too many.\n")
    cfg = load_config(None, [f"data.dataset='{data}'"], task="translate")
    with pytest.raises(ParallelDataError, match="80 lines but .* 81|81 lines but .* 80"):
        train_translation(cfg, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the WordPiece op the export uses
    served = tf.saved_model.load(sys.argv[1])
    sources = tf.constant(json.loads(sys.argv[2]))
    default = served.signatures["serving_default"](sources=sources)
    beam = served.signatures["beam"](sources=sources, beam_width=tf.constant(3),
        n_best=tf.constant(2), alpha=tf.constant(0.6), max_length=tf.constant(30))
    greedy = served.signatures["greedy"](sources=sources, max_length=tf.constant(30))
    print("RESULT " + json.dumps({
        "textrnn_imported": "textrnn" in sys.modules,
        "default": [t.decode() for t in default["translation"].numpy()],
        "n_best": [[t.decode() for t in row] for row in beam["n_best"].numpy()],
        "scores": beam["n_best_scores"].numpy().tolist(),
        "greedy": [t.decode() for t in greedy["translation"].numpy()],
        "attention_shape": list(beam["attention"].shape),
    }))
    """
)


def _load_in_bare_process(export_dir, sources, cwd):
    """Runs `_LOAD_SCRIPT` on an export in a fresh interpreter; returns what it printed."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(export_dir), json.dumps(sources)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_export_loads_without_textrnn_and_matches(translator, tmp_path):
    sources = SOURCES + [""]
    export_translator(translator, tmp_path / "export")
    info = json.loads((tmp_path / "export" / "textrnn_export.json").read_text())
    assert info["non_core_ops"] == ["WordpieceTokenizeWithOffsets"]
    assert set(info["signatures"]) == {"serving_default", "greedy", "beam", "sample"}
    served = _load_in_bare_process(tmp_path / "export", sources, tmp_path)
    assert not served["textrnn_imported"]
    beam = translator.run_strategy(
        sources, "beam", beam_width=3, n_best=2, alpha=0.6, max_length=30
    )
    assert served["n_best"] == [[t.decode() for t in row] for row in beam["n_best"].numpy()]
    np.testing.assert_allclose(served["scores"], beam["n_best_scores"], atol=1e-5)
    greedy = translator.run_strategy(sources, "greedy", max_length=30)
    assert served["greedy"] == [t.decode() for t in greedy["translation"].numpy()]
    cfg = translator.defaults
    default = translator.run_strategy(
        sources, cfg.strategy, beam_width=cfg.beam_width, alpha=cfg.alpha, max_length=cfg.max_length
    )
    assert served["default"] == [t.decode() for t in default["translation"].numpy()]
    assert served["default"][-1] == ""  # the empty source
    assert served["attention_shape"][0] == len(sources)


def test_cli_translate_evaluate_export(tiny_translation_run, tmp_path, capsys, monkeypatch):
    import io

    run = ["--run-dir", str(tiny_translation_run)]
    plot = tmp_path / "attention.png"
    args = ["--text", SOURCES[0], "--beam-width", "3", "--n-best", "2", "--max-length", "30"]
    assert main(["translate", *run, *args, "--attention-plot", str(plot)]) == 0
    out = capsys.readouterr().out.splitlines()
    # A header says what the score is (the one beam search ranks by), then one row a rank.
    assert out[0] == "rank\tscore (log-prob, length penalty alpha=0.6)\ttranslation"
    assert out[1].startswith("1\t") and out[2].startswith("2\t")
    assert out[3].startswith("attention plot written to") and len(out) == 4
    assert plot.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SOURCES[1].encode() + b"\n")))
    assert main(["translate", *run, "--strategy", "greedy", "--max-length", "30"]) == 0
    plain = capsys.readouterr().out.strip()
    assert plain
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SOURCES[1].encode() + b"\n")))
    assert main(["translate", *run, "--strategy", "greedy", "--max-length", "30", "--xla"]) == 0
    assert capsys.readouterr().out.strip() == plain
    hyps, report, per = tmp_path / "hyps.txt", tmp_path / "eval.json", tmp_path / "per.tsv"
    evaluate = ["evaluate", *run, "--split", "validation", "--strategy", "greedy"]
    outputs = ["--hypotheses", str(hyps), "--output", str(report), "--per-sentence", str(per)]
    assert main(evaluate + outputs) == 0
    rows = per.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("line\tsentence_bleu") and len(rows) == 13
    scores = [float(row.split("\t")[1]) for row in rows[1:]]
    assert scores == sorted(scores)
    assert len(hyps.read_text(encoding="utf-8").splitlines()) == 12
    assert json.loads(report.read_text())["sentences"] == 12
    assert main(["export", *run, "--out", str(tmp_path / "exp")]) == 0
    assert main(["predict", *run, "--text", "x"]) == 2
    assert "textrnn translate" in capsys.readouterr().err


def test_xla_translator_matches_the_plain_one_and_exports(loaded, translator, tmp_path):
    model, tokenizers, cfg = loaded
    fast = make_translator(model, tokenizers, cfg, jit_compile=True)
    sources = SOURCES + [""]
    for strategy, options in (("greedy", {}), ("beam", {"beam_width": 3, "n_best": 2})):
        want = translator.run_strategy(sources, strategy, max_length=30, **options)
        got = fast.run_strategy(sources, strategy, max_length=30, **options)
        np.testing.assert_array_equal(got["n_best"], want["n_best"])
        np.testing.assert_allclose(got["n_best_scores"], want["n_best_scores"], atol=1e-4)
        np.testing.assert_allclose(got["attention"], want["attention"], atol=1e-5)
    first = fast.run_strategy(sources, "sample", max_length=30, seed=4)
    again = fast.run_strategy(sources, "sample", max_length=30, seed=4)
    np.testing.assert_array_equal(first["translation"], again["translation"])
    # The length caps hold under XLA too, and max_length above the capacity acts as it.
    long_source = " ".join(["Hund"] * 400)
    result = fast.run_strategy([long_source], "greedy", max_length=10_000)
    assert result["target_tokens"].shape[1] <= fast.capacity
    export_translator(fast, tmp_path / "export")
    info = json.loads((tmp_path / "export" / "textrnn_export.json").read_text())
    assert info["xla"] is True and info["xla_capacity"] == cfg.translate.max_length
    served = _load_in_bare_process(tmp_path / "export", sources, tmp_path)
    beam = fast.run_strategy(sources, "beam", beam_width=3, n_best=2, alpha=0.6, max_length=30)
    assert served["n_best"] == [[t.decode() for t in row] for row in beam["n_best"].numpy()]


def test_learning_the_vocabularies_says_what_it_does_and_how_long_it_took():
    from textrnn.translation.data import load_splits
    from textrnn.translation.train import learn_tokenizers

    cfg = load_config(None, [f"data.dataset='{TINY_PARALLEL}'"], task="translate")
    messages = []
    tokenizers = learn_tokenizers(cfg.data, load_splits(cfg)["train"], log=messages.append)
    assert messages[0] == "Learning the de WordPiece vocabulary (8,000 pieces) from 80 sentences..."
    assert messages[2] == "Learning the en WordPiece vocabulary (8,000 pieces) from 80 sentences..."
    for message, tokenizer in zip(messages[1::2], tokenizers, strict=True):
        assert message.startswith(f"  {tokenizer.vocabulary_size():,} pieces in ")
        assert message.endswith(" s")
