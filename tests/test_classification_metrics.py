import json

import numpy as np
import pytest

from textrnn.metrics.classification import classification_report, confusion_matrix, format_report


def _brute_force(y_true, y_pred, num_classes):
    """Independent reference: explicit loops over the examples, no numpy."""
    y_true, y_pred = [int(v) for v in y_true], [int(v) for v in y_pred]
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(y_true, y_pred):
        matrix[t][p] += 1
    rows = []
    for c in range(num_classes):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1, tp + fn))
    accuracy = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
    return matrix, rows, accuracy


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_report_equals_brute_force_on_random_labels(num_classes, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    y_true = rng.integers(0, num_classes, n)
    # Correlated predictions, so the numbers are not all near chance.
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, num_classes, n))
    names = ["negative", "positive"] if num_classes == 2 else ["a", "b", "c"]
    report = classification_report(y_true, y_pred, label_names=names)
    matrix, rows, accuracy = _brute_force(y_true, y_pred, num_classes)

    assert confusion_matrix(y_true, y_pred, num_classes).tolist() == matrix
    assert report["confusion_matrix"] == matrix
    assert report["num_examples"] == n
    assert report["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    for got, (precision, recall, f1, support), name in zip(report["per_class"], rows, names):
        assert got["label"] == name
        assert got["precision"] == pytest.approx(precision, abs=1e-12)
        assert got["recall"] == pytest.approx(recall, abs=1e-12)
        assert got["f1"] == pytest.approx(f1, abs=1e-12)
        assert got["support"] == support
    for key, column in (("precision", 0), ("recall", 1), ("f1", 2)):
        macro = sum(row[column] for row in rows) / num_classes
        assert report["macro"][key] == pytest.approx(macro, abs=1e-12)
    if num_classes == 2:
        assert report["positive_class"] == "positive"
        assert (report["precision"], report["recall"], report["f1"]) == pytest.approx(rows[1][:3])
    else:
        assert "positive_class" not in report and "f1" not in report
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize("seed", [0, 1])
def test_report_matches_scikit_learn_when_available(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    report = classification_report(y_true, y_pred, label_names=["a", "b", "c"])
    np.testing.assert_array_equal(
        report["confusion_matrix"], metrics.confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    )
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], zero_division=0
    )
    np.testing.assert_allclose([r["precision"] for r in report["per_class"]], precision)
    np.testing.assert_allclose([r["recall"] for r in report["per_class"]], recall)
    np.testing.assert_allclose([r["f1"] for r in report["per_class"]], f1)
    np.testing.assert_allclose(
        report["macro"]["f1"], metrics.f1_score(y_true, y_pred, average="macro")
    )


def test_hand_computed_binary_example():
    # true:  0 0 0 1 1 1 1 1
    # pred:  0 1 0 1 1 0 1 1   -> tn=2 fp=1 fn=1 tp=4
    report = classification_report([0, 0, 0, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0, 1, 1])
    assert report["confusion_matrix"] == [[2, 1], [1, 4]]
    assert report["accuracy"] == 6 / 8
    negative, positive = report["per_class"]
    assert negative == {
        "label": "negative",
        "precision": 2 / 3,
        "recall": 2 / 3,
        "f1": pytest.approx(2 / 3),
        "support": 3,
    }
    assert positive["precision"] == 4 / 5 and positive["recall"] == 4 / 5
    assert positive["f1"] == pytest.approx(0.8) and positive["support"] == 5
    assert report["macro"]["f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["positive_class"] == "positive" and report["f1"] == pytest.approx(0.8)


def test_zero_denominators_are_zero():
    # Class 2 is never true and never predicted; class 1 is never predicted.
    report = classification_report([0, 1, 1], [0, 0, 0], label_names=["a", "b", "c"])
    a, b, c = report["per_class"]
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == (0.0, 0.0, 0.0, 2)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 0)
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == 1.0
    assert report["macro"]["recall"] == pytest.approx(1 / 3)  # zero-support class counts


def test_labels_accept_keras_shapes_and_integral_floats():
    matrix = confusion_matrix(np.array([[0], [1], [1]]), np.array([0.0, 1.0, 0.0]), 2)
    assert matrix.dtype == np.int64
    assert matrix.tolist() == [[1, 0], [1, 1]]


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1], [0, 1, 1], r"len\(y_true\)=2, len\(y_pred\)=3"),
        ([], [], "at least one label"),
        ([0, 1, 2], [0, 1, 1], r"y_true\[2\]=2"),
        ([0, 1, 1], [0, -1, 1], r"y_pred\[1\]=-1"),
        ([0, 0.5, 1], [0, 1, 1], r"y_true\[1\]=0.5"),
        ([0, "1"], [0, 1], r"y_true\[1\]='1'"),
        ([[0, 1]], [[0, 1]], r"shape=\(1, 2\)"),
    ],
)
def test_invalid_labels_raise_naming_the_value(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        classification_report(y_true, y_pred)


def test_invalid_num_classes_and_label_names():
    with pytest.raises(ValueError, match="num_classes=0"):
        confusion_matrix([0], [0], num_classes=0)
    with pytest.raises(ValueError, match="label_names=\\('only',\\)"):
        classification_report([0], [0], label_names=("only",))
    with pytest.raises(ValueError, match="distinct"):
        classification_report([0], [0], label_names=("x", "x"))
    with pytest.raises(TypeError, match="label_names='ab'"):
        classification_report([0], [0], label_names="ab")


def test_format_report_shows_every_part():
    report = classification_report([0, 1, 2, 2], [0, 2, 2, 1], label_names=["neg", "neu", "pos"])
    text = format_report(json.loads(json.dumps(report)))
    lines = text.splitlines()
    assert lines[0] == "accuracy  0.5000  (2 / 4 correct)"
    assert "class      precision  recall      f1  support" in lines
    assert "pos           0.5000  0.5000  0.5000        2" in lines
    assert "macro avg     0.5000  0.5000  0.5000        4" in lines
    assert "confusion matrix (rows: true, columns: predicted)" in lines
    assert lines[-1].split() == ["pos", "0", "1", "1"]
    assert "positive class" not in text


def test_format_report_binary_golden():
    text = format_report(classification_report([0, 1, 1, 1], [0, 1, 0, 1]))
    assert text == (
        "accuracy  0.7500  (3 / 4 correct)\n"
        "\n"
        "class      precision  recall      f1  support\n"
        "negative      0.5000  1.0000  0.6667        1\n"
        "positive      1.0000  0.6667  0.8000        3\n"
        "macro avg     0.7500  0.8333  0.7333        4\n"
        "\n"
        "positive class: positive  precision 1.0000  recall 0.6667  f1 0.8000\n"
        "\n"
        "confusion matrix (rows: true, columns: predicted)\n"
        "           negative  positive\n"
        "negative          1         0\n"
        "positive          1         2"
    )


def test_format_report_rejects_other_dicts():
    with pytest.raises(ValueError, match="missing"):
        format_report({"accuracy": 1.0})
