"""`SentimentClassifier`: a recurrent text classifier over token ids, padding-proof."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.checks import one_of, positive_int, unit_fraction
from textrnn.layers.pooling import POOLING_MODES, SequencePooling
from textrnn.layers.recurrent import CELLS, recurrent_layer
from textrnn.text.special_tokens import PAD_ID


@keras.saving.register_keras_serializable(package="textrnn")
class SentimentClassifier(keras.Model):
    """Embedding -> stacked (bi)directional RNN with masking -> pooling -> dropout -> dense.

    Padding (`PAD_ID`, 0) is masked everywhere: the recurrent layers skip padded steps and
    the pooling only looks at real tokens, so appending padding never changes a prediction.

    Args:
        vocab_size: number of token ids (special tokens included).
        num_classes: number of labels (2 for positive / negative sentiment).
        cell: `"rnn"` (tanh), `"lstm"` or `"gru"`.
        units: hidden size of each recurrent layer (per direction).
        num_layers: number of stacked recurrent layers.
        bidirectional: read the text in both directions (outputs concatenated).
        embedding_dim: size of the token embedding.
        pooling: how the outputs of the top layer become one vector: `"last"` (the final
            states), `"mean"`, `"max"` or `"attention"` (additive self-attention whose weights
            `call(..., return_attention=True)` returns).
        attention_units: hidden size of the attention scorer.
        dropout: dropout between recurrent layers and before the output layer.
        embedding_dropout: drops whole tokens (every channel of a position) at training time.
        spatial_dropout: drops embedding channels (the same ones at every position).
        recurrent_dropout: dropout on the recurrent connections (disables cuDNN on GPUs).
        fast_layers: textrnn's fast recurrent layers (`FastLSTM`, ...: the same weights as
            Keras's, textrnn's CPU loop; the default) or Keras's stock ones (`False`).

    Call arguments:
        inputs: int token ids `[batch, time]`, right-padded with `PAD_ID`.
        training: Keras training flag.
        return_attention: also return the pooling weights `[batch, time]` (attention pooling
            only); padded positions get exactly 0.

    Returns:
        logits `[batch, num_classes]` (and the attention weights).

    Example:
        >>> model = SentimentClassifier(vocab_size=1000, units=16, embedding_dim=8)
        >>> model(tf.constant([[5, 6, 7, 0], [8, 9, 0, 0]])).shape
        TensorShape([2, 2])
    """

    def __init__(
        self,
        vocab_size,
        num_classes=2,
        cell="lstm",
        units=128,
        num_layers=1,
        bidirectional=True,
        embedding_dim=128,
        pooling="attention",
        attention_units=64,
        dropout=0.3,
        embedding_dropout=0.0,
        spatial_dropout=0.0,
        recurrent_dropout=0.0,
        fast_layers=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocab_size", vocab_size),
            ("units", units),
            ("num_layers", num_layers),
            ("embedding_dim", embedding_dim),
            ("attention_units", attention_units),
        ):
            positive_int(name, value)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(
                f"Expected an integer >= 2 for `num_classes`. Received: {num_classes!r}"
            )
        for name, value in (
            ("dropout", dropout),
            ("embedding_dropout", embedding_dropout),
            ("spatial_dropout", spatial_dropout),
            ("recurrent_dropout", recurrent_dropout),
        ):
            unit_fraction(name, value)
        one_of("cell", cell, CELLS)
        one_of("pooling", pooling, POOLING_MODES)
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.embedding_dim = embedding_dim
        self.pooling = pooling
        self.attention_units = attention_units
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.spatial_dropout = spatial_dropout
        self.recurrent_dropout = recurrent_dropout
        self.fast_layers = fast_layers

        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        # noise_shape (batch, time, 1): one keep/drop decision per token, all channels.
        self.token_dropout = keras.layers.Dropout(
            embedding_dropout, noise_shape=(None, None, 1), name="token_dropout"
        )
        self.channel_dropout = keras.layers.SpatialDropout1D(
            spatial_dropout, name="channel_dropout"
        )
        self.recurrent_layers = []
        for i in range(num_layers):
            rnn = recurrent_layer(cell, fast_layers)(
                units,
                return_sequences=True,
                recurrent_dropout=recurrent_dropout,
                name=f"{cell}_{i}",
            )
            if self.bidirectional:
                rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{i}")
            self.recurrent_layers.append(rnn)
        self.pool = SequencePooling(
            pooling, bidirectional=self.bidirectional, attention_units=attention_units, name="pool"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(num_classes, name="logits")

    def build(self, input_shape=None):
        # Every sublayer is built explicitly, so weights load before any call.
        self.embedding.build((None, None))
        width = self.embedding_dim
        for rnn in self.recurrent_layers:
            rnn.build((None, None, width))
            width = self.units * (2 if self.bidirectional else 1)
        self.pool.build((None, None, width))
        self.classifier.build((None, width))
        self.built = True

    def call(self, inputs, training=False, return_attention=False):
        inputs = tf.convert_to_tensor(inputs)
        mask = tf.not_equal(inputs, PAD_ID)
        x = self.embedding(inputs)
        x = self.token_dropout(x, training=training)
        x = self.channel_dropout(x, training=training)
        for i, rnn in enumerate(self.recurrent_layers):
            if i:
                x = self.dropout_layer(x, training=training)
            x = rnn(x, mask=mask, training=training)
        if return_attention:
            pooled, weights = self.pool(x, mask, return_weights=True)
        else:
            pooled = self.pool(x, mask)
        logits = self.classifier(self.dropout_layer(pooled, training=training))
        return (logits, weights) if return_attention else logits

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            num_classes=self.num_classes,
            cell=self.cell,
            units=self.units,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            embedding_dim=self.embedding_dim,
            pooling=self.pooling,
            attention_units=self.attention_units,
            dropout=self.dropout,
            embedding_dropout=self.embedding_dropout,
            spatial_dropout=self.spatial_dropout,
            recurrent_dropout=self.recurrent_dropout,
            fast_layers=self.fast_layers,
        )
        return config
