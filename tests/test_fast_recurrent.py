"""`FastLSTM`, `FastGRU`, `FastSimpleRNN` against Keras's layers with the same weights.

The reference is Keras's own layer (its generic CPU loop, autodiff for the gradients): with
the same weights, outputs, final states and every gradient (inputs, initial states, each
weight) agree within 1e-5 in float32.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from textrnn.layers import fast_gru, fast_lstm, fast_recurrent, fast_simple_rnn
from textrnn.layers.fast_recurrent import fast_path_blocker, xla_compatible
from textrnn.layers.recurrent import CELLS, FAST_CELLS, recurrent_layer

TOL = {"rtol": 1e-5, "atol": 1e-5}
BATCH, STEPS, FEATURES, UNITS = 3, 6, 5, 4
STATES = {"lstm": 2, "gru": 1, "rnn": 1}
# Right-padded rows (one full, one short, one empty) and a row with a hole in it.
MASKS = {
    "none": None,
    "right_padded": np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], bool),
    "holes": np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool),
}
FAST_MODULES = (fast_lstm, fast_gru, fast_simple_rnn)


def random(*shape, seed):
    return tf.constant(np.random.RandomState(seed).randn(*shape).astype("float32"))


def copy_weights(source, target):
    rng = np.random.RandomState(7)
    weights = [0.6 * rng.randn(*w.shape).astype("float32") for w in source.get_weights()]
    source.set_weights(weights)
    target.set_weights(weights)


def wrapped(kind, cell, return_sequences, go_backwards=False, **kwargs):
    cls = (FAST_CELLS if kind == "fast" else CELLS)[cell]
    layer = cls(
        UNITS,
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards == "go_backwards",
        **kwargs,
    )
    return keras.layers.Bidirectional(layer) if go_backwards == "bidirectional" else layer


def twins(cell, return_sequences=True, direction=False, **kwargs):
    """A stock and a fast layer of `cell` (see `wrapped`), built, with the same weights."""
    stock = wrapped("stock", cell, return_sequences, direction, **kwargs)
    fast = wrapped("fast", cell, return_sequences, direction, **kwargs)
    stock.build((None, None, FEATURES))
    fast.build((None, None, FEATURES))
    copy_weights(stock, fast)
    return stock, fast


def inputs(cell, copies=1, dtype=tf.float32):
    """A random batch `[BATCH, STEPS, FEATURES]` and initial states for `copies` layers."""
    x = tf.cast(random(BATCH, STEPS, FEATURES, seed=1), dtype)
    state = [tf.cast(random(BATCH, UNITS, seed=2 + i), dtype) for i in range(STATES[cell] * copies)]
    return x, state


def outputs_and_grads(layer, x, initial_state, mask, training=False):
    """Outputs and the gradients of a fixed random projection of all of them with respect
    to the input, the initial state and every weight (tensors: usable in a tf.function)."""
    with tf.GradientTape() as tape:
        tape.watch([x, *initial_state])
        outputs = layer(x, initial_state=initial_state, mask=mask, training=training)
        loss = sum(
            tf.reduce_sum(o * tf.cast(random(*o.shape, seed=10 + i), o.dtype))
            for i, o in enumerate(outputs)
        )
    return outputs, tape.gradient(loss, [x, *initial_state, *layer.trainable_weights])


def run(layer, x, initial_state, mask, training=False):
    """`outputs_and_grads` as numpy arrays."""
    outputs, grads = outputs_and_grads(layer, x, initial_state, mask, training)
    return [o.numpy() for o in outputs], [g.numpy() for g in grads]


def assert_same(stock, fast):
    for a, b in zip(stock[0], fast[0], strict=True):
        np.testing.assert_allclose(b, a, **TOL)
    for a, b in zip(stock[1], fast[1], strict=True):
        np.testing.assert_allclose(b, a, **TOL)


@pytest.fixture
def fast_calls(monkeypatch):
    """Counts the fast path's forward and hand-written backward loops (proof that the
    fast path ran): `{"_forward": n, "_backward": m}`."""
    calls = {"_forward": 0, "_backward": 0}
    for module in FAST_MODULES:
        for name in calls:
            original = getattr(module, name)

            def counted(*args, _original=original, _name=name, **kwargs):
                calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("direction", ["forward", "go_backwards", "bidirectional"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_fast_layer_equals_keras(cell, mask, direction, return_sequences, fast_calls):
    copies = 2 if direction == "bidirectional" else 1
    x, state = inputs(cell, copies)
    mask = MASKS[mask]
    stock, fast = twins(cell, return_sequences, direction)
    # training=True: the hand-written gradient (no dropout here, so the same function).
    assert_same(run(stock, x, state, mask, True), run(fast, x, state, mask, True))
    assert fast_calls == {"_forward": copies, "_backward": copies}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_inference_path_and_its_autodiff_equal_keras(cell, fast_calls):
    x, state = inputs(cell)
    stock, fast = twins(cell)
    mask = MASKS["right_padded"]
    assert_same(run(stock, x, state, mask), run(fast, x, state, mask))
    assert fast_calls == {"_forward": 1, "_backward": 0}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("chunk", [1, 4, STEPS])  # 4: a chunk of 4 steps, then one of 2
def test_backward_in_chunks_equals_keras(cell, chunk, fast_calls, monkeypatch):
    monkeypatch.setattr(fast_recurrent, "BACKWARD_CHUNK_STEPS", chunk)
    x, state = inputs(cell)
    stock, fast = twins(cell)
    mask = MASKS["holes"]
    assert_same(run(stock, x, state, mask, True), run(fast, x, state, mask, True))
    assert fast_calls == {"_forward": 1, "_backward": 1}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("mode", ["training", "inference", "plain_ops"])
# 4 shards of 1 unit; 2 shards of 3 and 2 units.
@pytest.mark.parametrize(("shard_units", "units"), [(1, 4), (2, 5)])
def test_unit_shards_equal_keras(cell, mode, shard_units, units, fast_calls, monkeypatch):
    monkeypatch.setitem(fast_recurrent.SHARD_UNITS, cell, shard_units)
    monkeypatch.setattr(sys.modules[__name__], "UNITS", units)
    assert len(fast_recurrent.unit_shards(units, shard_units)) == (4 if units == 4 else 2)
    x, state = inputs(cell, copies=2)
    stock, fast = twins(cell, True, "bidirectional")
    if mode == "plain_ops":
        xla_compatible(fast)  # the LSTM's gate gradients by plain ops
    mask, training = MASKS["holes"], mode != "inference"
    assert_same(run(stock, x, state, mask, training), run(fast, x, state, mask, training))
    assert fast_calls == {"_forward": 2, "_backward": 2 if training else 0}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_two_stacked_layers_in_a_model_equal_keras(cell, fast_calls):
    def model(kind):
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(20, FEATURES, mask_zero=True)(inputs)
        x = wrapped(kind, cell, True)(x)[0]
        x = keras.layers.Bidirectional(
            (FAST_CELLS if kind == "fast" else CELLS)[cell](UNITS, return_sequences=True)
        )(x)
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    ids = tf.constant([[3, 4, 5, 6, 0, 0], [7, 8, 9, 1, 2, 3], [5, 0, 0, 0, 0, 0]])
    stock, fast = model("stock"), model("fast")
    copy_weights(stock, fast)
    results = []
    for m in (stock, fast):
        with tf.GradientTape() as tape:
            out = m(ids, training=True)
            loss = tf.reduce_sum(out * random(*out.shape, seed=3))
        grads = tape.gradient(loss, m.weights)
        results.append(([out.numpy()], [tf.convert_to_tensor(g).numpy() for g in grads]))
    assert_same(*results)
    assert fast_calls == {"_forward": 3, "_backward": 3}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_input_dropout_uses_kerass_mask(cell, fast_calls):
    x, state = inputs(cell)
    stock, fast = twins(cell, dropout=0.4, seed=5)
    dropped = run(fast, x, state, None, training=True)
    assert_same(run(stock, x, state, None, training=True), dropped)
    assert fast_calls == {"_forward": 1, "_backward": 1}
    # The dropout did something: inference gives other outputs.
    assert not np.allclose(run(fast, x, state, None)[0][0], dropped[0][0])


def test_fallbacks_are_named_and_still_match():
    assert fast_path_blocker(FAST_CELLS["lstm"](4), False, None) is None
    assert fast_path_blocker(FAST_CELLS["lstm"](4, unroll=True), False, None) == "unroll=True"
    recurrent = FAST_CELLS["gru"](4, recurrent_dropout=0.2)
    assert fast_path_blocker(recurrent, True, None) == "recurrent_dropout in training"
    assert fast_path_blocker(recurrent, False, None) is None
    assert fast_path_blocker(FAST_CELLS["gru"](4, reset_after=False), False, None) == (
        "reset_after=False"
    )
    relu = FAST_CELLS["rnn"](4, activation="relu", return_sequences=True)
    assert fast_path_blocker(relu, False, None) == "activation is not tanh"
    x = random(BATCH, STEPS, FEATURES, seed=1)
    stock = keras.layers.SimpleRNN(4, activation="relu", return_sequences=True)
    stock.build((None, None, FEATURES))
    relu.build((None, None, FEATURES))
    copy_weights(stock, relu)
    np.testing.assert_allclose(relu(x).numpy(), stock(x).numpy(), **TOL)


def test_recurrent_layer_chooses_and_checks():
    assert recurrent_layer("lstm") is fast_lstm.FastLSTM  # the default
    assert recurrent_layer("lstm", fast=False) is keras.layers.LSTM
    with pytest.raises(ValueError, match="cell"):
        recurrent_layer("transformer")
    with pytest.raises(TypeError, match="fast_layers='yes'"):
        recurrent_layer("gru", fast="yes")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cell_steps_reproduce_the_layer(cell):
    layer = FAST_CELLS[cell](UNITS, return_sequences=True, return_state=True)
    x = random(BATCH, STEPS, FEATURES, seed=1)
    outputs = layer(x)
    state = [tf.zeros([BATCH, UNITS])] * STATES[cell]
    for t in range(STEPS):
        out, state = layer.cell(x[:, t], state)
        state = state if isinstance(state, (list, tuple)) else [state]
        np.testing.assert_allclose(out.numpy(), outputs[0][:, t].numpy(), **TOL)


def test_config_and_keras_file_round_trip(tmp_path):
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Bidirectional(FAST_CELLS["lstm"](UNITS, return_sequences=True))(inputs)
    x = FAST_CELLS["gru"](UNITS, return_sequences=True)(x)
    model = keras.Model(inputs, FAST_CELLS["rnn"](UNITS)(x))
    path = tmp_path / "fast.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    kinds = [type(layer) for layer in loaded.layers[1:]]
    assert kinds == [keras.layers.Bidirectional, FAST_CELLS["gru"], FAST_CELLS["rnn"]]
    assert type(loaded.layers[1].forward_layer) is FAST_CELLS["lstm"]
    x = random(BATCH, STEPS, FEATURES, seed=1)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), **TOL)
    # A stock layer's config builds the fast layer.
    stock = keras.layers.LSTM(UNITS, go_backwards=True, dropout=0.1)
    assert FAST_CELLS["lstm"].from_config(stock.get_config()).get_config() == stock.get_config()


def test_a_model_saved_with_stock_layers_loads_into_fast_ones(tmp_path):
    def model(kind):
        layers = FAST_CELLS if kind == "fast" else CELLS
        inputs = keras.Input((None, FEATURES))
        x = keras.layers.Bidirectional(layers["gru"](UNITS, return_sequences=True))(inputs)
        return keras.Model(inputs, layers["lstm"](UNITS)(x))

    keras.backend.clear_session()  # as in a new process: the default layer names restart
    stock = model("stock")
    path = tmp_path / "stock.weights.h5"
    stock.save_weights(path)
    keras.backend.clear_session()
    fast = model("fast")
    assert [layer.name for layer in fast.layers] == [layer.name for layer in stock.layers]
    fast.load_weights(path)
    x = random(BATCH, STEPS, FEATURES, seed=1)
    np.testing.assert_array_equal([w.path for w in fast.weights], [w.path for w in stock.weights])
    np.testing.assert_allclose(fast(x).numpy(), stock(x).numpy(), **TOL)


def test_saved_model_export_uses_core_ops(tmp_path):
    layer = FAST_CELLS["lstm"](UNITS, return_sequences=True)
    layer.build((None, None, FEATURES))
    module = tf.Module()
    module.layer = layer
    module.serve = tf.function(
        lambda x: layer(x, mask=tf.reduce_any(x != 0, -1)),
        input_signature=[tf.TensorSpec([None, None, FEATURES], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path / "export"))
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    x = random(BATCH, STEPS, FEATURES, seed=1)
    expected = layer(x, mask=tf.reduce_any(x != 0, -1)).numpy()
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, **TOL)
    graph = module.serve.get_concrete_function().graph.as_graph_def()
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert "While" in ops or "StatelessWhile" in ops  # the fast path was exported
    assert all(hasattr(tf.raw_ops, op) for op in ops), sorted(ops)


def test_a_charlm_file_saved_with_stock_layers_loads_into_fast_ones(tmp_path):
    from textrnn.charlm.model import CharLM

    stock = CharLM(vocab_size=12, cell="lstm", units=8, embedding_dim=4, fast_layers=False)
    stock.build()
    assert type(stock.recurrent_layers[0]) is keras.layers.LSTM
    ids = tf.constant([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    stock.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.recurrent_layers[0]) is keras.layers.LSTM  # the switch is saved
    fast = CharLM.from_config({**stock.get_config(), "fast_layers": True})
    fast.build()
    fast.set_weights(stock.get_weights())
    assert type(fast.recurrent_layers[0]) is FAST_CELLS["lstm"]
    np.testing.assert_allclose(fast(ids).numpy(), stock(ids).numpy(), **TOL)


@pytest.mark.parametrize("task", ["charlm", "sentiment", "translate"])
def test_old_runs_load_into_fast_layers_and_answer_as_stock_ones(task, monkeypatch):
    """The flat-layout fixture runs were written with Keras's stock layers (no
    `fast_layers` key): they load into the fast layers (today's default), which answer as
    the stock layers with the same weights do."""
    from conftest import REPO

    from textrnn.training.runs import load_run

    monkeypatch.chdir(REPO)
    fast, _, _ = load_run(REPO / "tests" / "fixtures" / "flat_layout_runs" / task)
    assert fast.fast_layers is True
    stock = type(fast).from_config({**fast.get_config(), "fast_layers": False})
    stock.build()
    stock.set_weights(fast.get_weights())
    fast_types = tuple(FAST_CELLS.values())
    assert any(isinstance(layer, fast_types) for layer in fast._flatten_layers())
    assert not any(isinstance(layer, fast_types) for layer in stock._flatten_layers())
    ids = tf.constant([[5, 6, 7, 8, 9, 4], [7, 5, 4, 0, 0, 0]])
    inputs = (ids, ids[:, :5]) if task == "translate" else ids
    np.testing.assert_allclose(fast(inputs).numpy(), stock(inputs).numpy(), **TOL)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_float64_equals_keras(cell, fast_calls):
    """float64: the LSTM's gate gradients by plain ops (TensorFlow's fused kernel is
    float32 only), the others as in float32."""
    x, state = inputs(cell, dtype=tf.float64)
    stock, fast = twins(cell, dtype="float64")
    stock_result, fast_result = run(stock, x, state, None, True), run(fast, x, state, None, True)
    for a, b in zip(stock_result[0] + stock_result[1], fast_result[0] + fast_result[1]):
        assert b.dtype == np.float64
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)
    assert fast_calls == {"_forward": 1, "_backward": 1}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_xla_compatible_layers_compile_under_xla_and_equal_keras(cell, fast_calls):
    x, state = inputs(cell)
    stock, fast = twins(cell)
    assert fast.supports_jit is (cell != "lstm")  # FastLSTM's fused kernel has no XLA one
    assert xla_compatible(fast) == (cell == "lstm")
    assert fast.supports_jit is True
    mask = MASKS["holes"]
    compiled = tf.function(lambda: outputs_and_grads(fast, x, state, mask, True), jit_compile=True)
    outputs, grads = compiled()
    expected = run(stock, x, state, mask, True)
    assert_same(expected, ([o.numpy() for o in outputs], [g.numpy() for g in grads]))
    assert fast_calls == {"_forward": 1, "_backward": 1}


def transposed_matmuls(graph):
    """The MatMul ops with `transpose_b` in `graph` and in every function of its library
    (the bodies of the `tf.while_loop`s)."""
    graph_def = graph.as_graph_def()
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return [n.name for n in nodes if n.op == "MatMul" and n.attr["transpose_b"].b]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_backward_multiplies_by_transposed_copies(cell, fast_calls):
    """`dz @ U^T` and `dxw @ W^T` run on kernels transposed once per pass
    (`recurrent_transposes`), not with `transpose_b` at every step: Eigen ran the latter at
    about 0.6x the rate on a 2-core CPU."""
    x, state = inputs(cell)
    _, fast = twins(cell)

    def step(x, state):
        with tf.GradientTape() as tape:
            outputs = fast(x, initial_state=state, training=True)
            loss = sum(tf.reduce_sum(o) for o in outputs)
        return tape.gradient(loss, [x, *fast.trainable_weights])

    graph = tf.function(step).get_concrete_function(x, state).graph
    assert fast_calls["_backward"] == 1
    assert transposed_matmuls(graph) == []
