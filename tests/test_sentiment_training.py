"""Sentiment end to end on the tiny sample: training, prediction, awkward input, export, CLI."""

import csv
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY_SENTIMENT, TINY_SENTIMENT_OVERRIDES

from textrnn.cli import main
from textrnn.export.savedmodel import core_op_report
from textrnn.sentiment.data import LabeledDataError, load_sentiment_splits
from textrnn.sentiment.encoding import encode_split, encode_texts, truncate
from textrnn.sentiment.evaluate import evaluate_split, predict_labels
from textrnn.sentiment.export import export_sentiment
from textrnn.sentiment.model import SentimentClassifier
from textrnn.sentiment.predictor import make_predictor
from textrnn.sentiment.train import train_sentiment
from textrnn.text.special_tokens import UNK_ID
from textrnn.training.config import load_config
from textrnn.training.runs import RunDirError, load_run


@pytest.fixture(scope="module")
def predictor(tiny_sentiment_run):
    return make_predictor(*load_run(tiny_sentiment_run))


def test_run_writes_everything_and_learns(tiny_sentiment_run):
    for name in (
        "config.toml",
        "vocab.txt",
        "vocab.txt.json",
        "model.keras",
        "history.csv",
        "progress.json",
        "results.json",
        "backup",
        "logs",
    ):
        assert (tiny_sentiment_run / name).exists(), name
    results = json.loads((tiny_sentiment_run / "results.json").read_text())
    assert set(results) >= {"train", "validation", "test", "train_tokens_per_second"}
    assert results["train"]["accuracy"] >= 0.9  # the tiny sample is easy to fit
    assert results["train"]["num_examples"] == 60 and results["test"]["num_examples"] == 16
    assert 0 <= results["padding_fraction_bucketed"] <= results["padding_fraction_unbucketed"]
    model, _, cfg = load_run(tiny_sentiment_run)
    assert isinstance(model, SentimentClassifier) and cfg.data.label_names == (
        "negative",
        "positive",
    )


def test_predictions_match_the_model(predictor):
    texts = ["A warm and funny film.", "A dull film with a weak story.", "unseen zzz words"]
    out = predictor.predict(tf.constant(texts))
    probs = out["probabilities"].numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    ids = encode_texts(predictor.tokenizer, texts, 256).to_tensor()
    direct = tf.nn.softmax(predictor.model(ids)).numpy()
    np.testing.assert_allclose(probs, direct, atol=1e-6)
    results = predictor.predict_texts(texts)
    assert [r["label"] for r in results] == [n.decode() for n in out["labels"].numpy()]
    assert results[0]["label"] == "positive" and results[1]["label"] == "negative"


@pytest.mark.parametrize("policy", ["head", "tail", "head_tail"])
def test_truncation_policies_match_a_python_reference(policy):
    rows = [list(range(1, n + 1)) for n in (0, 1, 3, 8, 9, 20)]
    got = truncate(tf.ragged.constant(rows, dtype=tf.int32), 8, policy).to_list()
    head = 8 // 4
    for row, out in zip(rows, got):
        if len(row) <= 8:
            assert out == row
        elif policy == "head":
            assert out == row[:8]
        elif policy == "tail":
            assert out == row[-8:]
        else:
            assert out == row[:head] + row[-(8 - head) :]
    with pytest.raises(ValueError, match="truncation"):
        truncate(tf.ragged.constant([[1]]), 8, "middle")


def test_awkward_input(predictor):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty, blank, unk = predictor.predict_texts(["", "  \t ", "zzzqqq"])
    assert any("whitespace" in str(w.message) for w in caught)
    assert empty == blank == unk  # no tokens is read as one <unk>
    assert encode_texts(predictor.tokenizer, [""], 5).to_list() == [[UNK_ID]]
    with pytest.raises(ValueError, match="offset 6"):
        predictor.predict_texts([b"great \xff film"])
    # A 60 KB review is tokenised and truncated by the policy: only the head counts.
    long_text = "A warm and funny film. " + "dull " * 12_000
    assert 60_000 < len(long_text) <= predictor.limits.max_input_bytes
    head = " ".join(long_text.split()[:256])
    (long_result,) = predictor.predict_texts([long_text])
    (head_result,) = predictor.predict_texts([head])
    np.testing.assert_allclose(
        list(long_result["probabilities"].values()),
        list(head_result["probabilities"].values()),
        atol=1e-6,
    )
    # A 1 MB one is over the input cap: refused, naming its size.
    with pytest.raises(ValueError, match="at most 65536 bytes. Received: 1000023 bytes in text 0"):
        predictor.predict_texts(["A warm and funny film. " + "dull " * 200_000])
    # In the graph, bytes that are not UTF-8 are replaced, never a crash.
    out = predictor.predict(tf.constant([b"great \xff film"]))
    assert np.isfinite(out["probabilities"].numpy()).all()


def test_explain_returns_attention_over_the_tokens(predictor):
    (result,) = predictor.explain_texts(["The acting is superb and the story is moving."])
    assert result["tokens"][:3] == ["the", "acting", "is"]
    assert len(result["weights"]) == len(result["tokens"])
    assert abs(sum(result["weights"]) - 1.0) < 1e-5


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    texts = tf.constant(json.loads(sys.argv[2]))
    out = served.signatures["serving_default"](texts=texts)
    explained = served.signatures["explain"](texts=texts)
    print("RESULT " + json.dumps({
        "textrnn_imported": "textrnn" in sys.modules,
        "probabilities": out["probabilities"].numpy().tolist(),
        "labels": [x.decode() for x in out["labels"].numpy()],
        "weights": explained["weights"].numpy().tolist(),
    }))
    """
)


def test_export_loads_without_textrnn_and_matches(predictor, tmp_path):
    texts = ["A warm and funny film.", "", "The jokes fall flat \u00fcber alles."]
    export_sentiment(predictor, tmp_path / "export")
    assert core_op_report(tmp_path / "export") == set()  # word vocabulary: core ops only
    info = json.loads((tmp_path / "export" / "textrnn_export.json").read_text())
    assert info["signatures"] == ["explain", "serving_default"] and info["non_core_ops"] == []
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(tmp_path / "export"), json.dumps(texts)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    served = json.loads(lines[-1][len("RESULT ") :])
    assert not served["textrnn_imported"]
    expected = predictor.predict(tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-6)
    assert served["labels"] == [x.decode() for x in expected["labels"].numpy()]
    np.testing.assert_allclose(
        served["weights"], predictor.explain(tf.constant(texts))["weights"], atol=1e-6
    )


def test_bad_training_data_is_reported_before_any_run_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = (TINY_SENTIMENT / "dev.tsv").read_text(encoding="utf-8")
    (data / "dev.tsv").write_text(good, encoding="utf-8")
    (data / "train.tsv").write_text(good + "an extra\tfield\t1\n", encoding="utf-8")
    cfg = load_config(None, [f"data.dataset='{data}'"], task="sentiment")
    with pytest.raises(LabeledDataError, match="line 18"):
        train_sentiment(cfg, tmp_path / "run", verbose=0)
    (data / "train.tsv").write_text(good + "a fine film\tpositive\n", encoding="utf-8")
    with pytest.raises(LabeledDataError, match="positive"):
        train_sentiment(cfg, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_run_dir_guards(tiny_sentiment_run):
    cfg = load_config(tiny_sentiment_run / "config.toml")
    with pytest.raises(RunDirError, match="--resume"):
        train_sentiment(cfg, tiny_sentiment_run, verbose=0)


def test_cli_predict_explain_evaluate_export(tiny_sentiment_run, tmp_path, capsys, monkeypatch):
    import io

    run = ["--run-dir", str(tiny_sentiment_run)]
    assert main(["predict", *run, "--text", "A warm and funny film.", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] in ("negative", "positive") and set(line["probabilities"]) == {
        "negative",
        "positive",
    }
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one film\ntwo films\n")))
    assert main(["predict", *run]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    plot = tmp_path / "w.png"
    assert main(["explain", *run, "--text", "A dull film.", "--plot", str(plot)]) == 0
    assert "█" in capsys.readouterr().out and plot.read_bytes()[:4] == b"\x89PNG"
    report = tmp_path / "eval.json"
    assert main(["evaluate", *run, "--split", "test", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["test"]["num_examples"] == 16
    assert "confusion" in capsys.readouterr().out.lower()
    assert main(["export", *run, "--out", str(tmp_path / "exp")]) == 0
    assert main(["generate", *run, "--prompt", "x"]) == 2
    assert "textrnn predict" in capsys.readouterr().err


def test_resume_after_kill(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "textrnn.cli",
        "train",
        "sentiment",
        "--quiet",
        "--recipe",
        str(REPO / "models/sentiment-sst2/config.toml"),
        "--run-dir",
        str(run_dir),
    ]
    for override in TINY_SENTIMENT_OVERRIDES + ["train.epochs=40", "data.batch_size=2"]:
        args += ["--set", override]
    from conftest import kill_after_first_epoch_then_resume

    kill_after_first_epoch_then_resume(args, run_dir, total_epochs=40)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 40 and results["test"]["num_examples"] == 16


def test_moving_average_run_keeps_the_weights_validation_chose(tmp_path):
    overrides = TINY_SENTIMENT_OVERRIDES + ["train.ema_momentum=0.5", "train.epochs=4"]
    cfg = load_config(None, overrides, task="sentiment")
    results = train_sentiment(cfg, tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "history.csv") as f:
        chosen = max(float(row["val_accuracy"]) for row in csv.DictReader(f))
    # The saved model scores exactly what validation measured for the epoch it chose:
    # it holds the averaged weights, not the last raw ones.
    assert results["validation"]["accuracy"] == pytest.approx(chosen, abs=1e-6)
    model, tokenizer, saved = load_run(tmp_path / "run")
    assert saved.train.ema_momentum == 0.5
    # Reloaded from model.keras, the model still scores what validation chose, to the
    # loss (accuracy on 16 texts cannot tell two sets of weights apart): the loss logged
    # for the first epoch with the best validation accuracy.
    validation = load_sentiment_splits(saved.data.dataset)["validation"]
    reloaded = evaluate_split(model, tokenizer, saved, validation)["accuracy"]
    assert reloaded == pytest.approx(chosen, abs=1e-6)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    best = next(r for r in rows if float(r["val_accuracy"]) == chosen)
    _, probabilities = predict_labels(model, encode_split(tokenizer, validation.texts, saved.data))
    labels = np.asarray(validation.labels)
    loss = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
    assert loss == pytest.approx(float(best["val_loss"]), rel=1e-4)
    (prediction,) = make_predictor(model, tokenizer, saved).predict_texts(["A warm film."])
    assert prediction["label"] in saved.data.label_names
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
