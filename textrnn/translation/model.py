"""`Seq2Seq`: a recurrent encoder-decoder translator with Bahdanau or Luong attention.

The encoder reads the source with stacked (bidirectional) LSTM/GRU layers; a bridge
turns its final states into the decoder's initial state; the decoder attends over the
encoder outputs at every step. `call()` is the teacher-forced training pass; `encode()`
and `step()` are what `textrnn.decoding.decode` drives (greedy, beam search, sampling),
and a token-by-token `step()` reproduces the teacher-forced logits.

Attention flavours:
- Bahdanau (additive, Bahdanau et al., 2015): the previous top decoder state queries the
  source; the context joins the embedded input token in the recurrent input; the output
  layer sees `[state; context; input embedding]`.
- Luong (Luong et al., 2015; scores "dot", "general", "concat"): the new top decoder
  state queries the source; the attentional vector `tanh(W [state; context])` makes the
  logits and, with *input feeding*, joins the next step's input.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.attention import LUONG_SCORES, BahdanauAttention, LuongAttention
from textrnn.layers.checks import one_of, positive_int, unit_fraction
from textrnn.layers.projection import last_axis_matmul
from textrnn.layers.recurrent import CELLS, recurrent_layer
from textrnn.text.special_tokens import PAD_ID

ATTENTIONS = ("bahdanau", "luong")
BRIDGES = ("dense", "zero")


@keras.saving.register_keras_serializable(package="textrnn")
class Seq2Seq(keras.Model):
    """Encoder-decoder with attention over token ids.

    Args:
        source_vocab_size: number of source token ids (special tokens included).
        target_vocab_size: number of target token ids.
        cell: `"lstm"`, `"gru"` or `"rnn"` (tanh), for encoder and decoder.
        embedding_dim: size of both embeddings.
        encoder_units: hidden size of each encoder layer, per direction.
        encoder_layers: number of stacked encoder layers.
        bidirectional: bidirectional encoder (outputs concatenated).
        decoder_units: hidden size of each decoder layer.
        decoder_layers: number of stacked decoder layers.
        attention: `"bahdanau"` or `"luong"`.
        attention_score: Luong's score: `"dot"` (needs encoder outputs of
            `decoder_units`), `"general"` or `"concat"`.
        attention_units: hidden size of the additive scorers (Bahdanau, Luong concat).
        input_feeding: Luong only: feed the attentional vector to the next step.
        bridge: decoder initial state from the encoder's final states (`"dense"`: a tanh
            layer per decoder layer and state) or `"zero"`.
        dropout: on embeddings, between layers and before the output projection.
        tie_embeddings: the output projection is the transposed target embedding (the
            attentional vector then has `embedding_dim` units).
        fast_layers: textrnn's fast recurrent layers (`FastLSTM`, ...: the same weights as
            Keras's, textrnn's CPU loop; the default) or Keras's stock ones (`False`).

    Call arguments:
        inputs: a pair `(source_ids [batch, src_len], target_in_ids [batch, tgt_len])`,
            right-padded with `PAD_ID`; `target_in_ids` starts with `BOS_ID`.
        training: Keras training flag.
        return_attention: also return attention weights `[batch, tgt_len, src_len]`.

    Returns:
        logits `[batch, tgt_len, target_vocab_size]` (and the attention weights).

    Example:
        >>> model = Seq2Seq(100, 120, embedding_dim=8, encoder_units=8, decoder_units=16)
        >>> model((tf.constant([[5, 6, 0]]), tf.constant([[2, 7, 8, 9]]))).shape
        TensorShape([1, 4, 120])
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        cell="lstm",
        embedding_dim=256,
        encoder_units=256,
        encoder_layers=1,
        bidirectional=True,
        decoder_units=512,
        decoder_layers=1,
        attention="luong",
        attention_score="general",
        attention_units=256,
        input_feeding=True,
        bridge="dense",
        dropout=0.3,
        tie_embeddings=True,
        fast_layers=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("source_vocab_size", source_vocab_size),
            ("target_vocab_size", target_vocab_size),
            ("embedding_dim", embedding_dim),
            ("encoder_units", encoder_units),
            ("encoder_layers", encoder_layers),
            ("decoder_units", decoder_units),
            ("decoder_layers", decoder_layers),
            ("attention_units", attention_units),
        ):
            positive_int(name, value)
        unit_fraction("dropout", dropout)
        one_of("cell", cell, CELLS)
        one_of("attention", attention, ATTENTIONS)
        one_of("attention_score", attention_score, LUONG_SCORES)
        one_of("bridge", bridge, BRIDGES)
        if attention == "bahdanau" and input_feeding:
            raise ValueError(
                "`input_feeding` is a Luong-attention option (Bahdanau attention already "
                "feeds the context to the recurrent input). Received: attention='bahdanau', "
                "input_feeding=True"
            )
        memory_dim = encoder_units * (2 if bidirectional else 1)
        if attention == "luong" and attention_score == "dot" and memory_dim != decoder_units:
            raise ValueError(
                "Luong 'dot' attention needs encoder outputs as wide as the decoder state: "
                f"encoder_units * directions = {memory_dim}, decoder_units = {decoder_units}."
            )
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.encoder_units = encoder_units
        self.encoder_layers = encoder_layers
        self.bidirectional = bool(bidirectional)
        self.decoder_units = decoder_units
        self.decoder_layers = decoder_layers
        self.attention = attention
        self.attention_score = attention_score
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding)
        self.bridge = bridge
        self.dropout = dropout
        self.tie_embeddings = bool(tie_embeddings)
        self.fast_layers = fast_layers
        self.memory_dim = memory_dim
        self.output_dim = embedding_dim if tie_embeddings else decoder_units

        self.source_embedding = keras.layers.Embedding(
            source_vocab_size, embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocab_size, embedding_dim, name="target_embedding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.encoder_rnns = []
        for i in range(encoder_layers):
            rnn = recurrent_layer(cell, fast_layers)(
                encoder_units, return_sequences=True, return_state=True, name=f"encoder_{cell}_{i}"
            )
            if self.bidirectional:
                rnn = keras.layers.Bidirectional(rnn, name=f"encoder_bidirectional_{i}")
            self.encoder_rnns.append(rnn)
        self.decoder_rnns = [
            recurrent_layer(cell, fast_layers)(
                decoder_units, return_sequences=True, return_state=True, name=f"decoder_{cell}_{i}"
            )
            for i in range(decoder_layers)
        ]
        # One flat list (layer i, state j at i * state_size + j): nested lists of layers are
        # not tracked by tf.saved_model.
        self.bridge_layers = []
        if bridge == "dense":
            self.bridge_layers = [
                keras.layers.Dense(decoder_units, activation="tanh", name=f"bridge_{i}_{j}")
                for i in range(decoder_layers)
                for j in range(self.state_size_per_layer)
            ]
        if attention == "bahdanau":
            self.attention_layer = BahdanauAttention(attention_units, name="attention")
        else:
            self.attention_layer = LuongAttention(
                attention_score, units=attention_units, name="attention"
            )
        self.output_layer = keras.layers.Dense(
            self.output_dim, activation="tanh", use_bias=False, name="attentional"
        )
        if self.tie_embeddings:
            self.output_bias = None  # created in build()
        else:
            self.projection = keras.layers.Dense(target_vocab_size, name="logits")

    # ----------------------------------------------------------------------------------
    # Shapes and weights
    # ----------------------------------------------------------------------------------

    @property
    def state_size_per_layer(self) -> int:
        return 2 if self.cell == "lstm" else 1

    @property
    def _decoder_input_dim(self):
        if self.attention == "bahdanau":
            return self.embedding_dim + self.memory_dim
        return self.embedding_dim + (self.output_dim if self.input_feeding else 0)

    def build(self, input_shape=None):
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = self.embedding_dim
        for rnn in self.encoder_rnns:
            rnn.build((None, None, width))
            width = self.memory_dim
        width = self._decoder_input_dim
        for rnn in self.decoder_rnns:
            rnn.build((None, None, width))
            width = self.decoder_units
        summary = self.encoder_units * (2 if self.bidirectional else 1)
        for dense in self.bridge_layers:
            dense.build((None, summary))
        query_dim = self.decoder_units
        self.attention_layer.build((None, query_dim), (None, None, self.memory_dim))
        out_in = self.decoder_units + self.memory_dim
        if self.attention == "bahdanau":
            out_in += self.embedding_dim
        self.output_layer.build((None, out_in))
        if self.tie_embeddings:
            self.output_bias = self.add_weight(
                shape=(self.target_vocab_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.projection.build((None, self.output_dim))
        self.built = True

    # ----------------------------------------------------------------------------------
    # Encoder
    # ----------------------------------------------------------------------------------

    def encode(self, source_ids, training=False):
        """Runs the encoder: returns `(context, initial_state)` for `step()`.

        Args:
            source_ids: int `[batch, src_len]`, right-padded with `PAD_ID`.
            training: Keras training flag.

        Returns:
            `context = (memory [batch, src_len, memory_dim], keys, source_mask)` and the
            decoder's initial state (see `step`).
        """
        source_ids = tf.convert_to_tensor(source_ids)
        mask = tf.not_equal(source_ids, PAD_ID)
        x = self.dropout_layer(self.source_embedding(source_ids), training=training)
        for i, rnn in enumerate(self.encoder_rnns):
            if i:
                x = self.dropout_layer(x, training=training)
            outputs = rnn(x, mask=mask, training=training)
            x, final = outputs[0], outputs[1:]
        # Bidirectional: (fw h[, fw c], bw h[, bw c]) -> per component, concat fw and bw.
        k = self.state_size_per_layer
        if self.bidirectional:
            final = [tf.concat([final[j], final[k + j]], -1) for j in range(k)]
        memory = x
        keys = self.attention_layer.precompute(memory)
        batch = tf.shape(source_ids)[0]
        rnn_state = []
        for i in range(self.decoder_layers):
            if self.bridge == "dense":
                layer_state = tuple(self.bridge_layers[i * k + j](final[j]) for j in range(k))
            else:
                zeros = tf.zeros(tf.stack([batch, self.decoder_units]), memory.dtype)
                layer_state = tuple(zeros for _ in range(k))
            rnn_state.append(layer_state)
        feed = tf.zeros(tf.stack([batch, self.output_dim]), memory.dtype)
        return (memory, keys, mask), (tuple(rnn_state), feed)

    # ----------------------------------------------------------------------------------
    # Decoder
    # ----------------------------------------------------------------------------------

    def project(self, attentional):
        """Logits over the target vocabulary from attentional vectors `[..., output_dim]`."""
        if self.tie_embeddings:
            logits = last_axis_matmul(
                attentional, self.target_embedding.embeddings, transpose_kernel=True
            )
            return logits + self.output_bias
        return self.projection(attentional)

    def decoder_core(self, token_ids, state, context, training=False):
        """One decoder step up to the attentional vector (before the projection).

        Returns:
            `(attentional [batch, output_dim], new_state, attention [batch, src_len])`.
        """
        memory, keys, mask = context
        rnn_state, feed = state
        x = self.dropout_layer(self.target_embedding(token_ids), training=training)
        if self.attention == "bahdanau":
            query = rnn_state[-1][0]
            attended, weights = self.attention_layer(query, memory, keys, mask)
            h = tf.concat([x, attended], -1)
        else:
            h = tf.concat([x, feed], -1) if self.input_feeding else x
        new_rnn_state = []
        for i, rnn in enumerate(self.decoder_rnns):
            if i:
                h = self.dropout_layer(h, training=training)
            h, layer_state = rnn.cell(h, list(rnn_state[i]), training=training)
            new_rnn_state.append(
                tuple(layer_state) if isinstance(layer_state, (list, tuple)) else (layer_state,)
            )
        if self.attention == "luong":
            attended, weights = self.attention_layer(h, memory, keys, mask)
            attentional = self.output_layer(tf.concat([h, attended], -1))
        else:
            attentional = self.output_layer(tf.concat([h, attended, x], -1))
        return attentional, (tuple(new_rnn_state), attentional), weights

    def step(self, token_ids, state, context):
        """One decoding step: ids `[batch]` + state -> logits, new state, attention.

        The state is `(rnn_state, feed)`: a tuple per decoder layer of `[batch, units]`
        tensors (`(h, c)` for LSTM) and the last attentional vector `[batch, output_dim]`
        (used with input feeding). `context` is what `encode` returned; beam search tiles
        it once.

        Returns:
            `(logits [batch, target_vocab_size], new_state, attention [batch, src_len])`.
        """
        attentional, state, weights = self.decoder_core(token_ids, state, context)
        return self.project(attentional), state, weights

    def _parallel_decoder(self, target_in, state, context, training):
        """Luong attention without input feeding: the decoder RNN runs over the whole
        target at once and attention is computed for all steps together."""
        memory, keys, mask = context
        rnn_state, _ = state
        target_mask = tf.not_equal(target_in, PAD_ID)
        h = self.dropout_layer(self.target_embedding(target_in), training=training)
        for i, rnn in enumerate(self.decoder_rnns):
            if i:
                h = self.dropout_layer(h, training=training)
            h = rnn(h, initial_state=list(rnn_state[i]), mask=target_mask, training=training)[0]
        attended, weights = self.attention_layer(h, memory, keys, mask)
        return self.output_layer(tf.concat([h, attended], -1)), weights

    def _sequential_decoder(self, target_in, state, context, training, sample_probability):
        """The decoder one step at a time (Bahdanau, input feeding, scheduled sampling)."""
        steps = tf.shape(target_in)[1]
        outputs = tf.TensorArray(self.compute_dtype, size=steps)
        attention = tf.TensorArray(self.compute_dtype, size=steps)
        sampling = sample_probability is not None

        def body(t, ids, state, outputs, attention):
            attentional, state, weights = self.decoder_core(ids, state, context, training)
            outputs = outputs.write(t, attentional)
            attention = attention.write(t, weights)
            gold = target_in[:, tf.minimum(t + 1, steps - 1)]
            if sampling:
                # Scheduled sampling (Bengio et al., 2015): feed the model's own best guess
                # instead of the reference token, row by row, with this probability.
                guess = tf.argmax(self.project(attentional), -1, output_type=gold.dtype)
                draw = tf.random.uniform(tf.shape(gold)) < sample_probability
                gold = tf.where(draw & (gold != PAD_ID), guess, gold)
            return t + 1, gold, state, outputs, attention

        _, _, _, outputs, attention = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), target_in[:, 0], state, outputs, attention),
        )
        return (
            tf.transpose(outputs.stack(), [1, 0, 2]),
            tf.transpose(attention.stack(), [1, 0, 2]),
        )

    def call(self, inputs, training=False, return_attention=False, sample_probability=None):
        source_ids, target_in = inputs
        context, state = self.encode(source_ids, training=training)
        target_in = tf.convert_to_tensor(target_in)
        if sample_probability is None and self.attention == "luong" and not self.input_feeding:
            attentional, weights = self._parallel_decoder(target_in, state, context, training)
        else:
            attentional, weights = self._sequential_decoder(
                target_in, state, context, training, sample_probability
            )
        logits = self.project(self.dropout_layer(attentional, training=training))
        return (logits, weights) if return_attention else logits

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            cell=self.cell,
            embedding_dim=self.embedding_dim,
            encoder_units=self.encoder_units,
            encoder_layers=self.encoder_layers,
            bidirectional=self.bidirectional,
            decoder_units=self.decoder_units,
            decoder_layers=self.decoder_layers,
            attention=self.attention,
            attention_score=self.attention_score,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            bridge=self.bridge,
            dropout=self.dropout,
            tie_embeddings=self.tie_embeddings,
            fast_layers=self.fast_layers,
        )
        return config
