"""Sentiment prediction from raw strings, in the graph: the same code for training data,
the Python API, the command line and the exported SavedModel.

Text becomes ids with `textrnn.sentiment.encoding.encode_texts` (tokenise, truncate, never
empty) and `SentimentPredictor` turns a batch of strings into label ids, label names, class
probabilities and, for attention-pooled models, per-token attention weights.

Documented behaviour for awkward input:
- empty or whitespace-only text has no tokens; it is read as one `<unk>` token, so the
  prediction is the model's answer for "no evidence" (the Python API and CLI warn);
- text longer than `max_length` tokens is truncated by the recipe's policy: `"head"`
  keeps the first `max_length` tokens, `"tail"` the last, `"head_tail"` the first quarter
  and the last three quarters (long reviews often conclude at the end);
- words outside the vocabulary become `<unk>`;
- bytes that are not UTF-8 are an error in the Python API and CLI (naming the byte
  offset); inside the graph (an export) they become U+FFFD first;
- a batch is checked against `ExportLimits` (`max_batch_size` strings of at most
  `max_input_bytes` bytes): an `InvalidArgumentError` in the graph naming the input, the
  value and the cap (the Python API splits long lists into batches and refuses an
  over-long text with a `ValueError`);
- an empty batch gives empty outputs (`probabilities` `[0, classes]`, `tokens` and
  `weights` `[0, 0]`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from textrnn.export import input_checks as checks
from textrnn.export.limits import ExportLimits
from textrnn.sentiment.encoding import encode_texts, truncate
from textrnn.text.special_tokens import PAD_ID
from textrnn.text.utf8 import ensure_text


class SentimentPredictor(tf.Module):
    """A classifier with its tokeniser and text policy: strings in, labels out.

    Args:
        model: a built `SentimentClassifier`.
        tokenizer: the tokeniser it was trained with.
        max_length: tokens kept per text.
        truncation: the truncation policy (see `truncate`).
        label_names: one name per class, in label-id order.
        limits: the caps every call is checked against (`ExportLimits()` by default;
            this task reads `max_batch_size` and `max_input_bytes`).

    Example:
        >>> predictor = SentimentPredictor(model, tokenizer, 256, "head", ("negative", "positive"))
        >>> predictor.predict(tf.constant(["a gem of a film"]))["labels"]
        <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'positive'], dtype=object)>
    """

    def __init__(
        self, model, tokenizer, max_length, truncation, label_names, name=None, limits=None
    ):
        super().__init__(name=name or "sentiment_predictor")
        self.limits = limits or ExportLimits()
        if model.vocab_size != tokenizer.vocabulary_size():
            raise ValueError(
                f"Tokenizer has {tokenizer.vocabulary_size()} ids but the model expects "
                f"{model.vocab_size}: they do not belong together."
            )
        if len(label_names) != model.num_classes:
            raise ValueError(
                f"Expected {model.num_classes} label names for the model's classes. "
                f"Received: {list(label_names)}"
            )
        truncate(tf.ragged.constant([[1]]), max_length, truncation)  # validates both
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.label_names = tuple(label_names)
        self._names = tf.constant(self.label_names)

    def _classify(self, texts, return_attention):
        texts, string_checks = checks.string_batch(
            "texts", texts, self.limits.max_batch_size, self.limits.max_input_bytes
        )
        (texts,) = checks.after(string_checks, texts)
        rows = tf.shape(texts)[0]
        # The recurrent layers cannot run on zero rows: an empty batch classifies one
        # placeholder text, and every output is cut back to `rows`.
        texts = tf.concat([texts, tf.fill(tf.cast(tf.equal(rows, 0), tf.int32)[None], "")], 0)
        ids = encode_texts(self.tokenizer, texts, self.max_length, self.truncation)
        dense = ids.to_tensor(PAD_ID)
        outputs = self.model(dense, training=False, return_attention=return_attention)
        logits = outputs[0] if return_attention else outputs
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        label_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        result = {
            "label_ids": label_ids[:rows],
            "labels": tf.gather(self._names, label_ids)[:rows],
            "probabilities": probabilities[:rows],
        }
        if return_attention:
            # `[:, :0]` for an empty batch: no tokens at all.
            width = tf.where(tf.equal(rows, 0), 0, tf.shape(dense)[1])
            tokens = self.tokenizer.ids_to_tokens(ids).to_tensor("")
            result["tokens"] = tokens[:rows, :width]
            result["weights"] = tf.cast(outputs[1], tf.float32)[:rows, :width]
        return result

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def predict(self, texts):
        """Label ids `[batch]`, label names `[batch]` and probabilities `[batch, classes]`."""
        return self._classify(texts, return_attention=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def explain(self, texts):
        """`predict`'s outputs plus `tokens` `[batch, time]` (padded with "") and the
        attention `weights` `[batch, time]` over them (attention pooling only)."""
        return self._classify(texts, return_attention=True)

    def check_texts(self, texts: Sequence, warn=True) -> list[str]:
        """Python-side checks: decodes bytes (error on bad UTF-8), refuses texts longer
        than `limits.max_input_bytes` and warns about texts that have no tokens."""
        if isinstance(texts, (str, bytes, bytearray)):
            texts = [texts]
        texts = [ensure_text(t) for t in texts]
        if not texts:
            raise ValueError("Expected at least one text. Received an empty list.")
        checks.check_text_bytes(texts, self.limits.max_input_bytes, "text")
        if warn:
            blank = [i for i, t in enumerate(texts) if not t.strip()]
            if blank:
                warnings.warn(
                    f"Texts {blank} are empty or whitespace only: each is read as one <unk>.",
                    stacklevel=3,
                )
        return texts

    def predict_texts(self, texts, batch_size: int = 256) -> list[dict]:
        """Predictions for Python strings, one dict per text.

        Returns:
            `[{"label": name, "label_id": int, "probabilities": {name: p, ...}}, ...]`.

        Raises:
            ValueError: no texts, bytes that are not UTF-8, or a text longer than
                `limits.max_input_bytes`.
        """
        texts = self.check_texts(texts)
        batch_size = min(batch_size, self.limits.max_batch_size)
        results = []
        for start in range(0, len(texts), batch_size):
            out = self.predict(tf.constant(texts[start : start + batch_size]))
            for label_id, probs in zip(out["label_ids"].numpy(), out["probabilities"].numpy()):
                results.append(
                    {
                        "label": self.label_names[label_id],
                        "label_id": int(label_id),
                        "probabilities": dict(zip(self.label_names, map(float, probs))),
                    }
                )
        return results

    def explain_texts(self, texts) -> list[dict]:
        """`predict_texts` plus the tokens and their attention weights (attention pooling).

        Raises:
            ValueError: the model does not use attention pooling.
        """
        if self.model.pooling != "attention":
            raise ValueError(
                "Only attention-pooled models can explain a prediction; this model uses "
                f"pooling={self.model.pooling!r}."
            )
        texts = self.check_texts(texts)
        results = []
        step = self.limits.max_batch_size
        for start in range(0, len(texts), step):
            results.extend(self._explain_batch(texts[start : start + step]))
        return results

    def _explain_batch(self, texts) -> list[dict]:
        out = self.explain(tf.constant(texts))
        results = []
        for i in range(len(texts)):
            tokens = [t.decode("utf-8") for t in out["tokens"][i].numpy()]
            n = len([t for t in tokens if t])
            probs = out["probabilities"][i].numpy()
            label_id = int(out["label_ids"][i])
            results.append(
                {
                    "label": self.label_names[label_id],
                    "label_id": label_id,
                    "probabilities": dict(zip(self.label_names, map(float, probs))),
                    "tokens": tokens[:n],
                    "weights": out["weights"][i].numpy()[:n].astype(np.float64).tolist(),
                }
            )
        return results


def make_predictor(model, tokenizer, cfg, limits: ExportLimits | None = None) -> SentimentPredictor:
    """The `SentimentPredictor` of a run (its text policy and label names), checking its
    inputs against `limits` (`ExportLimits()` by default)."""
    return SentimentPredictor(
        model,
        tokenizer,
        cfg.data.max_length,
        cfg.data.truncation,
        cfg.data.label_names,
        limits=limits,
    )
