"""Classification metrics for the sentiment classifier: confusion matrix and a report.

Pure numpy, so reports can be computed and printed without TensorFlow. Conventions:

- Confusion matrix rows are the *true* label and columns the *predicted* label, so
  `matrix[i, j]` counts examples of class `i` predicted as class `j`.
- Precision, recall and F1 whose denominator is zero are reported as 0.0 (scikit-learn's
  `zero_division=0`): precision of a class never predicted, recall of a class absent from
  `y_true`, and F1 of a class neither present nor predicted.
- Macro averages are unweighted means over *all* classes in `label_names`, including
  classes with zero support.
"""

from __future__ import annotations

import numbers

import numpy as np


def _check_num_classes(num_classes):
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise ValueError(
            f"Expected a positive integer for `num_classes`. Received: num_classes={num_classes!r}"
        )
    return int(num_classes)


def _check_labels(values, name, num_classes):
    """Returns `values` as a 1-D int64 array, or raises naming the first bad value."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:  # Keras-style [batch, 1] labels
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"Expected a 1-D sequence of labels for `{name}`. Received: shape={array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"Expected at least one label in `{name}`. Received: 0 labels")
    if array.dtype.kind not in "iub":
        if array.dtype.kind != "f":  # strings or mixed types: check the original objects
            array = np.asarray(values, dtype=object).reshape(-1)
        for index, value in enumerate(array.tolist()):
            if isinstance(value, bool) or not (
                isinstance(value, numbers.Integral)
                or (isinstance(value, float) and value.is_integer())
            ):
                raise ValueError(
                    f"Expected integer labels in `{name}`. Received: {name}[{index}]={value!r}"
                )
    labels = array.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"Expected labels in [0, {num_classes}) in `{name}`. "
            f"Received: {name}[{index}]={array.tolist()[index]!r}"
        )
    return labels


def _safe_divide(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else 0.0


def confusion_matrix(y_true, y_pred, num_classes) -> np.ndarray:
    """Counts of (true label, predicted label) pairs.

    Args:
        y_true: 1-D integer labels in `[0, num_classes)` (a trailing axis of size 1, as in
            Keras `[batch, 1]` labels, is squeezed). Integral floats are accepted.
        y_pred: predicted labels, same length and range as `y_true`.
        num_classes: the number of classes.

    Returns:
        An int64 array `[num_classes, num_classes]`; rows are the true label, columns the
        predicted label.

    Raises:
        ValueError: if `num_classes` is not a positive integer, if either argument is empty,
            not 1-D, holds a non-integer or out-of-range label (the error names the first
            bad value and its index), or if the lengths differ.

    Example:
        >>> confusion_matrix([0, 1, 1, 1], [0, 1, 0, 1], num_classes=2)
        array([[1, 0],
               [1, 2]])
    """
    num_classes = _check_num_classes(num_classes)
    true = _check_labels(y_true, "y_true", num_classes)
    pred = _check_labels(y_pred, "y_pred", num_classes)
    if true.size != pred.size:
        raise ValueError(
            "Expected `y_true` and `y_pred` of the same length. "
            f"Received: len(y_true)={true.size}, len(y_pred)={pred.size}"
        )
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def classification_report(y_true, y_pred, label_names=("negative", "positive")) -> dict:
    """Accuracy, per-class and macro precision / recall / F1, and the confusion matrix.

    Precision, recall and F1 with a zero denominator are 0.0 (see the module docstring).
    F1 is computed as `2 tp / (2 tp + fp + fn)`, which equals the harmonic mean of
    precision and recall whenever both are defined.

    Args:
        y_true: 1-D integer labels in `[0, len(label_names))`.
        y_pred: predicted labels, same length and range as `y_true`.
        label_names: one name per class, in label order; the number of classes is
            `len(label_names)`.

    Returns:
        A JSON-serialisable dict with keys `num_examples`, `accuracy`, `per_class` (a list,
        in label order, of `{"label", "precision", "recall", "f1", "support"}`), `macro`
        (`{"precision", "recall", "f1"}`, unweighted means over classes),
        `confusion_matrix` (list of lists, rows = true label) and `label_names`. With
        exactly two classes it also holds `positive_class` (the name of class 1) and
        top-level `precision`, `recall` and `f1` of class 1 (the usual binary convention).

    Raises:
        ValueError: if `label_names` has fewer than two names, repeats a name, or the labels
            are invalid (see `confusion_matrix`).
        TypeError: if `label_names` is a single string.

    Example:
        >>> report = classification_report([0, 1, 1, 1], [0, 1, 0, 1])
        >>> report["accuracy"], report["positive_class"], round(report["f1"], 4)
        (0.75, 'positive', 0.8)
    """
    if isinstance(label_names, str):
        raise TypeError(
            "Expected a sequence of class names for `label_names`. "
            f"Received: label_names={label_names!r}"
        )
    names = [str(name) for name in label_names]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(
            "Expected at least two distinct class names for `label_names`. "
            f"Received: label_names={tuple(label_names)!r}"
        )
    matrix = confusion_matrix(y_true, y_pred, num_classes=len(names))
    num_examples = int(matrix.sum())
    true_positives = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)

    per_class = []
    for index, name in enumerate(names):
        tp = int(true_positives[index])
        fp = int(predicted[index]) - tp
        fn = int(support[index]) - tp
        per_class.append(
            {
                "label": name,
                "precision": _safe_divide(tp, tp + fp),
                "recall": _safe_divide(tp, tp + fn),
                "f1": _safe_divide(2 * tp, 2 * tp + fp + fn),
                "support": int(support[index]),
            }
        )
    report = {
        "num_examples": num_examples,
        "accuracy": _safe_divide(int(true_positives.sum()), num_examples),
        "per_class": per_class,
        "macro": {
            key: float(np.mean([row[key] for row in per_class]))
            for key in ("precision", "recall", "f1")
        },
        "confusion_matrix": matrix.tolist(),
        "label_names": names,
    }
    if len(names) == 2:
        report["positive_class"] = names[1]
        for key in ("precision", "recall", "f1"):
            report[key] = per_class[1][key]
    return report


def format_report(report: dict) -> str:
    """Renders a `classification_report` dict as a plain-text table for the terminal.

    Args:
        report: a dict returned by `classification_report` (possibly after a JSON round
            trip).

    Returns:
        A multi-line string (no trailing newline): the accuracy, one row per class and a
        macro-average row with precision, recall, F1 and support, the binary summary when
        there are two classes, and the confusion matrix labelled with the class names.

    Raises:
        ValueError: if `report` lacks one of the keys `classification_report` writes.

    Example:
        >>> print(format_report(classification_report([0, 1, 1, 1], [0, 1, 0, 1])))
        accuracy  0.7500  (3 / 4 correct)
        <BLANKLINE>
        class      precision  recall      f1  support
        negative      0.5000  1.0000  0.6667        1
        positive      1.0000  0.6667  0.8000        3
        macro avg     0.7500  0.8333  0.7333        4
        <BLANKLINE>
        positive class: positive  precision 1.0000  recall 0.6667  f1 0.8000
        <BLANKLINE>
        confusion matrix (rows: true, columns: predicted)
                   negative  positive
        negative          1         0
        positive          1         2
    """
    required = ("num_examples", "accuracy", "per_class", "macro", "confusion_matrix")
    missing = [key for key in required if key not in report]
    if missing:
        raise ValueError(
            f"Expected a dict from `classification_report`. Received a dict missing {missing}"
        )
    per_class = report["per_class"]
    names = [row["label"] for row in per_class]
    matrix = report["confusion_matrix"]
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    name_width = max(len("macro avg"), *(len(name) for name in names))

    lines = [
        f"accuracy  {report['accuracy']:.4f}  ({correct} / {report['num_examples']} correct)",
        "",
        f"{'class':<{name_width}}  precision  recall      f1  support",
    ]
    rows = [(row["label"], row, row["support"]) for row in per_class]
    rows.append(("macro avg", report["macro"], report["num_examples"]))
    for name, row, support in rows:
        lines.append(
            f"{name:<{name_width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}"
            f"  {row['f1']:>6.4f}  {support:>7d}"
        )
    if "positive_class" in report:
        summary = (
            f"positive class: {report['positive_class']}  precision {report['precision']:.4f}"
            f"  recall {report['recall']:.4f}  f1 {report['f1']:.4f}"
        )
        lines += ["", summary]
    cell = max(8, *(len(name) for name in names), *(len(str(v)) for r in matrix for v in r))
    lines += [
        "",
        "confusion matrix (rows: true, columns: predicted)",
        " " * name_width + "".join(f"  {name:>{cell}}" for name in names),
    ]
    for name, counts in zip(names, matrix):
        lines.append(f"{name:<{name_width}}" + "".join(f"  {v:>{cell}d}" for v in counts))
    return "\n".join(lines)
