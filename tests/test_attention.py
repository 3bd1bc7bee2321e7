"""Golden tests: every attention score against a float64 numpy implementation written here."""

import textrnn  # noqa: F401, I001  (first: selects the TensorFlow backend)

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.layers.attention import BahdanauAttention, LuongAttention, masked_softmax

B, T, S = 3, 4, 6
LENGTHS = [6, 4, 1]  # a full row, a padded row, a single real token

# kind -> (constructor, query_dim, memory_dim)
KINDS = {
    "bahdanau": (lambda: BahdanauAttention(units=5), 3, 7),
    "dot": (lambda: LuongAttention("dot"), 7, 7),
    "general": (lambda: LuongAttention("general"), 3, 7),
    "concat": (lambda: LuongAttention("concat", units=5), 3, 7),
}


def _make(kind, seed=0):
    """A built layer of `kind` whose weights are fixed random numbers (not the initialiser's)."""
    factory, query_dim, memory_dim = KINDS[kind]
    layer = factory()
    layer.build((None, None, query_dim), (None, None, memory_dim))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0.0, 0.6, weight.shape).astype("float32"))
    return layer


def _inputs(kind, seed=1, lengths=LENGTHS):
    _, query_dim, memory_dim = KINDS[kind]
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, T, query_dim)).astype("float32")
    memory = rng.normal(size=(B, S, memory_dim)).astype("float32")
    mask = np.arange(S)[None, :] < np.array(lengths)[:, None]
    return query, memory, mask


def _reference(kind, layer, query, memory, mask):
    """float64 numpy attention: scores [B, T, S], masked softmax, weighted sum of memory."""
    q, m = query.astype("float64"), memory.astype("float64")
    if kind == "dot":
        scores = np.einsum("btd,bsd->bts", q, m)
    elif kind == "general":
        w_a = layer.kernel.numpy().astype("float64")  # [memory_dim, query_dim]
        scores = np.einsum("btd,bsd->bts", q, m @ w_a)
    else:
        w_q = layer.query_kernel.numpy().astype("float64")
        w_m = layer.memory_kernel.numpy().astype("float64")
        v = layer.score_vector.numpy().astype("float64")
        scores = np.zeros((q.shape[0], q.shape[1], m.shape[1]))
        for b in range(q.shape[0]):
            for t in range(q.shape[1]):
                for s in range(m.shape[1]):
                    scores[b, t, s] = v @ np.tanh(q[b, t] @ w_q + m[b, s] @ w_m)
    full_mask = np.broadcast_to(mask[:, None, :], scores.shape)
    shifted = np.where(full_mask, scores, -np.inf)
    shifted = shifted - np.max(np.where(full_mask, scores, -1e300), -1, keepdims=True)
    exp = np.where(full_mask, np.exp(shifted), 0.0)
    total = exp.sum(-1, keepdims=True)
    weights = np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)
    return np.einsum("bts,bsd->btd", weights, m), weights


def _attend(layer, query, memory, mask):
    context, weights = layer(query, memory, layer.precompute(memory), mask=mask)
    return context.numpy(), weights.numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_matches_numpy_reference(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind)
    context, weights = _attend(layer, query, memory, mask)
    ref_context, ref_weights = _reference(kind, layer, query, memory, mask)
    assert context.shape == (B, T, memory.shape[-1]) and weights.shape == (B, T, S)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, ref_weights, atol=1e-5)
    np.testing.assert_allclose(context, ref_context, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_single_steps_equal_all_steps(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind)
    context, weights = _attend(layer, query, memory, mask)
    keys = layer.precompute(memory)
    for t in range(T):
        step_context, step_weights = layer(query[:, t], memory, keys, mask=mask)
        assert step_context.shape == (B, memory.shape[-1]) and step_weights.shape == (B, S)
        np.testing.assert_allclose(step_context, context[:, t], atol=1e-6)
        np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_weights_are_exactly_zero_and_real_ones_sum_to_one(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind)
    _, weights = _attend(layer, query, memory, mask)
    padded = np.broadcast_to(~mask[:, None, :], weights.shape)
    assert np.all(weights[padded] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[~padded] > 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_memory_at_masked_positions_changes_nothing(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind)
    garbage = memory.copy()
    noise = np.random.default_rng(9).normal(0.0, 1e4, memory.shape).astype("float32")
    garbage[~mask] = noise[~mask]
    context, weights = _attend(layer, query, memory, mask)
    garbage_context, garbage_weights = _attend(layer, query, garbage, mask)
    np.testing.assert_array_equal(garbage_weights, weights)
    np.testing.assert_array_equal(garbage_context, context)


@pytest.mark.parametrize("kind", KINDS)
def test_fully_masked_row_gives_zeros_and_finite_gradients(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind, lengths=[6, 0, 2])
    with tf.GradientTape() as tape:
        memory_var = tf.constant(memory)
        tape.watch(memory_var)
        context, weights = layer(query, memory_var, layer.precompute(memory_var), mask=mask)
        loss = tf.reduce_sum(context**2)
    gradients = tape.gradient(loss, [memory_var, *layer.trainable_weights])
    assert np.all(context.numpy()[1] == 0.0) and np.all(weights.numpy()[1] == 0.0)
    assert np.all(np.isfinite(context.numpy())) and np.all(np.isfinite(weights.numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)
    ref_context, ref_weights = _reference(kind, layer, query, memory, mask)
    np.testing.assert_allclose(context.numpy(), ref_context, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_precomputed_keys_equal_fresh_keys(kind):
    layer = _make(kind)
    _, memory, mask = _inputs(kind)
    keys = layer.precompute(memory)  # once per source, reused for every query
    for seed in (3, 4):
        other_query = _inputs(kind, seed=seed)[0]
        reused = layer(other_query, memory, keys, mask=mask)
        fresh = layer(other_query, memory, layer.precompute(memory), mask=mask)
        omitted = layer(other_query, memory, mask=mask)
        positional = layer(other_query, memory, keys, mask)
        for a, *others in zip(reused, fresh, omitted, positional):
            for b in others:
                np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "concat"])
def test_precompute_before_build(kind):
    layer = KINDS[kind][0]()
    query, memory, mask = _inputs(kind)
    keys = layer.precompute(memory)  # builds the memory side from the memory shape
    context, weights = layer(query, memory, keys, mask=mask)
    ref_context, ref_weights = _reference(kind, layer, query, memory, mask)
    np.testing.assert_allclose(context.numpy(), ref_context, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-5)
    # Weights are created in the same order either way, so they line up on reload.
    names = [w.name for w in _make(kind).weights]
    assert [w.name for w in layer.weights] == names


def test_general_precompute_before_build_says_what_to_do():
    with pytest.raises(ValueError, match="build"):
        LuongAttention("general").precompute(np.zeros((1, 2, 3), "float32"))


@pytest.mark.parametrize("kind", KINDS)
def test_xla_matches_eager(kind):
    layer = _make(kind)
    query, memory, mask = _inputs(kind)

    @tf.function(jit_compile=True)
    def attend(query, memory, mask):
        return layer(query, memory, layer.precompute(memory), mask=mask)

    for q in (query, query[:, 0]):
        compiled = attend(q, memory, mask)
        eager = layer(q, memory, layer.precompute(memory), mask=mask)
        for a, b in zip(compiled, eager):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind):
    layer = KINDS[kind][0]()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()


@keras.saving.register_keras_serializable(package="textrnn_tests")
class AttentionProbe(keras.Model):
    """The smallest model that owns an attention layer: `(query, memory, mask) -> outputs`."""

    def __init__(self, kind, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.attention = KINDS[kind][0]()

    def build(self, input_shape=None):
        _, query_dim, memory_dim = KINDS[self.kind]
        self.attention.build((None, None, query_dim), (None, None, memory_dim))
        self.built = True

    def call(self, inputs):
        query, memory, mask = inputs
        return self.attention(query, memory, self.attention.precompute(memory), mask=mask)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


@pytest.mark.parametrize("kind", KINDS)
def test_keras_save_load_round_trip(kind, tmp_path):
    model = AttentionProbe(kind)
    model.build()
    for weight, value in zip(model.weights, _make(kind, seed=5).weights):
        weight.assign(value)
    query, memory, mask = _inputs(kind)
    path = tmp_path / "probe.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert isinstance(again.attention, type(model.attention))
    for a, b in zip(again((query, memory, mask)), model((query, memory, mask))):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mask_argument_raises_no_keras_mask_warning():
    layer = _make("bahdanau")
    query, memory, mask = _inputs("bahdanau")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(query, memory, layer.precompute(memory), mask=mask)


def test_dot_with_mismatched_sizes_names_both():
    layer = LuongAttention("dot")
    with pytest.raises(ValueError, match=r"query_dim=4, memory_dim=6"):
        layer(np.zeros((2, 4), "float32"), np.zeros((2, 3, 6), "float32"))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BahdanauAttention(units=0), "units=0"),
        (lambda: BahdanauAttention(units=2.5), "units=2.5"),
        (lambda: LuongAttention("cosine"), "score='cosine'"),
        (lambda: LuongAttention("concat"), "units=None"),
    ],
)
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_keys_are_rejected():
    layer = BahdanauAttention(units=5)
    memory = np.zeros((2, 3, 7), "float32")
    with pytest.raises(ValueError, match="precompute"):
        layer(np.zeros((2, 4), "float32"), memory, memory)  # memory passed as keys


def test_masked_softmax_example():
    weights = masked_softmax([[1.0, 1.0, 5.0], [2.0, 3.0, 4.0]], [[True, True, False], [False] * 3])
    np.testing.assert_array_equal(weights.numpy(), [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
