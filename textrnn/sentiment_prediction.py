"""Sentiment prediction from raw strings, in the graph: the same code for training data,
the Python API, the command line and the exported SavedModel.

Text becomes ids with `encode_texts` (tokenise, truncate, never empty) and
`SentimentPredictor` turns a batch of strings into label ids, label names, class
probabilities and, for attention-pooled models, per-token attention weights.

Documented behaviour for awkward input:
- empty or whitespace-only text has no tokens; it is read as one `<unk>` token, so the
  prediction is the model's answer for "no evidence" (the Python API and CLI warn);
- text longer than `max_length` tokens is truncated by the recipe's policy: `"head"`
  keeps the first `max_length` tokens, `"tail"` the last, `"head_tail"` the first quarter
  and the last three quarters (long reviews often conclude at the end);
- words outside the vocabulary become `<unk>`;
- bytes that are not UTF-8 are an error in the Python API and CLI (naming the byte
  offset); inside the graph (an export) they become U+FFFD first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from textrnn.char_tokenizer import ensure_text
from textrnn.ragged_ops import pick_rows
from textrnn.special_tokens import PAD_ID, UNK_ID

TRUNCATION_POLICIES = ("head", "tail", "head_tail")


def truncate(ids: tf.RaggedTensor, max_length: int, policy: str = "head") -> tf.RaggedTensor:
    """Cuts every row of `ids` to at most `max_length` tokens.

    Args:
        ids: ragged ids `[batch, (tokens)]`.
        max_length: the most tokens a row keeps.
        policy: `"head"` (first tokens), `"tail"` (last tokens) or `"head_tail"` (the first
            `max_length // 4` and the last `max_length - max_length // 4`).

    Returns:
        The truncated ragged ids; rows already short enough are unchanged.

    Example:
        >>> truncate(tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7, 8, 9]]), 4, "head_tail")
        <tf.RaggedTensor [[1, 7, 8, 9]]>
    """
    if policy not in TRUNCATION_POLICIES:
        raise ValueError(
            f"Expected `truncation` in {TRUNCATION_POLICIES}. Received: truncation={policy!r}"
        )
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"Expected a positive integer `max_length`. Received: {max_length!r}")
    if policy == "head":
        return ids[:, :max_length]
    if policy == "tail":
        return ids[:, -max_length:]
    head = max_length // 4
    long_rows = ids.row_lengths() > max_length
    cut = tf.concat([ids[:, :head], ids[:, head - max_length :]], axis=1)
    return pick_rows(long_rows, cut, ids)


def encode_texts(tokenizer, texts, max_length: int, truncation: str = "head"):
    """Raw strings -> ragged int32 ids, ready for a `SentimentClassifier`.

    Invalid UTF-8 becomes U+FFFD, text is tokenised, truncated by `truncation`, and a text
    without tokens becomes one `UNK_ID`, so no row is empty (an all-padding row would be
    meaningless to the recurrent layers).

    Args:
        tokenizer: a `WordTokenizer` or `WordPieceTokenizer`.
        texts: 1-D string tensor (or list of str).
        max_length: tokens kept per text.
        truncation: a policy of `truncate`.

    Returns:
        int32 `tf.RaggedTensor` `[batch, (tokens)]`, every row of length 1..max_length.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    ids = truncate(tokenizer.tokenize(texts), max_length, truncation)
    empty = ids.row_lengths() == 0
    unk = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(empty)[0], 1], UNK_ID))
    return pick_rows(empty, unk, ids)


class SentimentPredictor(tf.Module):
    """A classifier with its tokeniser and text policy: strings in, labels out.

    Args:
        model: a built `SentimentClassifier`.
        tokenizer: the tokeniser it was trained with.
        max_length: tokens kept per text.
        truncation: the truncation policy (see `truncate`).
        label_names: one name per class, in label-id order.

    Example:
        >>> predictor = SentimentPredictor(model, tokenizer, 256, "head", ("negative", "positive"))
        >>> predictor.predict(tf.constant(["a gem of a film"]))["labels"]
        <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'positive'], dtype=object)>
    """

    def __init__(self, model, tokenizer, max_length, truncation, label_names, name=None):
        super().__init__(name=name or "sentiment_predictor")
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
        ids = encode_texts(self.tokenizer, texts, self.max_length, self.truncation)
        dense = ids.to_tensor(PAD_ID)
        outputs = self.model(dense, training=False, return_attention=return_attention)
        logits = outputs[0] if return_attention else outputs
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        label_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        result = {
            "label_ids": label_ids,
            "labels": tf.gather(self._names, label_ids),
            "probabilities": probabilities,
        }
        if return_attention:
            result["tokens"] = self.tokenizer.ids_to_tokens(ids).to_tensor("")
            result["weights"] = tf.cast(outputs[1], tf.float32)
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
        """Python-side checks: decodes bytes (error on bad UTF-8) and warns about texts that
        have no tokens."""
        if isinstance(texts, (str, bytes, bytearray)):
            texts = [texts]
        texts = [ensure_text(t) for t in texts]
        if not texts:
            raise ValueError("Expected at least one text. Received an empty list.")
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
            ValueError: no texts, or bytes that are not UTF-8.
        """
        texts = self.check_texts(texts)
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
