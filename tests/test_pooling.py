"""Golden tests: every pooling mode against a float64 numpy implementation written here."""

import textrnn  # noqa: F401, I001  (first: selects the TensorFlow backend)

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.layers.pooling import POOLING_MODES, SequencePooling

B, T, D = 4, 5, 6
LENGTHS = [5, 3, 1, 4]
# (mode, bidirectional): every mode, plus bidirectional "last"
CASES = [(mode, False) for mode in POOLING_MODES] + [("last", True)]


def _make(mode, bidirectional=False, seed=0):
    layer = SequencePooling(mode, bidirectional=bidirectional, attention_units=7)
    layer.build((None, None, D))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:  # fixed random numbers, bias included (not the zeros init)
        weight.assign(rng.normal(0.0, 0.6, weight.shape).astype("float32"))
    return layer


def _inputs(seed=1, lengths=LENGTHS, time=T):
    rng = np.random.default_rng(seed)
    sequences = rng.normal(size=(len(lengths), time, D)).astype("float32")
    mask = np.arange(time)[None, :] < np.array(lengths)[:, None]
    return np.where(mask[..., None], sequences, 0.0).astype("float32"), mask


def _reference(layer, sequences, mask):
    """float64 numpy pooling, one row at a time over its real positions only."""
    pooled = np.zeros(sequences.shape[::2])
    weights = np.zeros(mask.shape)
    for b, (row, row_mask) in enumerate(zip(sequences.astype("float64"), mask)):
        real = row[row_mask]
        if not len(real):
            continue
        if layer.mode == "last" and layer.bidirectional:
            pooled[b] = np.concatenate([real[-1, : D // 2], real[0, D // 2 :]])
        elif layer.mode == "last":
            pooled[b] = real[-1]
        elif layer.mode == "mean":
            pooled[b] = real.mean(0)
        elif layer.mode == "max":
            pooled[b] = real.max(0)
        else:
            kernel, bias, v = (w.numpy().astype("float64") for w in layer.weights)
            scores = np.tanh(real @ kernel + bias) @ v
            a = np.exp(scores - scores.max())
            a /= a.sum()
            weights[b, row_mask] = a
            pooled[b] = a @ real
    return pooled, weights


@pytest.mark.parametrize("mode, bidirectional", CASES)
def test_matches_numpy_reference(mode, bidirectional):
    layer = _make(mode, bidirectional)
    sequences, mask = _inputs()
    pooled = layer(sequences, mask).numpy()
    ref_pooled, _ = _reference(layer, sequences, mask)
    assert pooled.shape == (B, D) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, ref_pooled, atol=1e-5)


@pytest.mark.parametrize("mode, bidirectional", CASES)
def test_extra_padding_with_garbage_changes_nothing(mode, bidirectional):
    layer = _make(mode, bidirectional)
    sequences, mask = _inputs()
    # 3 more padded steps, and every padded step (old and new) full of large garbage.
    garbage = np.random.default_rng(2).normal(0.0, 1e4, (B, T + 3, D)).astype("float32")
    long_mask = np.pad(mask, [(0, 0), (0, 3)])
    garbage[long_mask] = sequences[mask]
    expected = layer(sequences, mask).numpy()
    np.testing.assert_allclose(layer(garbage, long_mask).numpy(), expected, rtol=0, atol=1e-6)


def test_attention_weights():
    layer = _make("attention")
    sequences, mask = _inputs()
    pooled, weights = layer(sequences, mask, return_weights=True)
    weights = weights.numpy()
    ref_pooled, ref_weights = _reference(layer, sequences, mask)
    assert weights.shape == (B, T)
    assert np.all(weights[~mask] == 0.0) and np.all(weights[mask] > 0.0)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), ref_pooled, atol=1e-5)


def test_bidirectional_last_picks_forward_end_and_backward_start():
    sequences = np.arange(B * T * D, dtype="float32").reshape(B, T, D)
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]
    pooled = SequencePooling("last", bidirectional=True)(sequences, mask).numpy()
    for b, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(pooled[b, : D // 2], sequences[b, length - 1, : D // 2])
        np.testing.assert_array_equal(pooled[b, D // 2 :], sequences[b, 0, D // 2 :])
    unidirectional = SequencePooling("last")(sequences, mask).numpy()
    np.testing.assert_array_equal(unidirectional, sequences[np.arange(B), np.array(LENGTHS) - 1])


def test_max_of_negative_values_ignores_zero_padding():
    sequences, mask = _inputs()
    negative = np.where(mask[..., None], -np.abs(sequences) - 1.0, 0.0).astype("float32")
    pooled = SequencePooling("max")(negative, mask).numpy()
    assert np.all(pooled <= -1.0)
    np.testing.assert_array_equal(pooled, _reference(_make("max"), negative, mask)[0])


@pytest.mark.parametrize("mode, bidirectional", CASES)
def test_row_without_real_positions_pools_to_zeros(mode, bidirectional):
    layer = _make(mode, bidirectional)
    sequences, mask = _inputs(lengths=[5, 0, 2, 0])
    sequences[1] = -3.0  # garbage in the empty rows
    if mode == "attention":
        pooled, weights = layer(sequences, mask, return_weights=True)
        assert np.all(weights.numpy()[[1, 3]] == 0.0)
    else:
        pooled = layer(sequences, mask)
    pooled = pooled.numpy()
    assert np.all(np.isfinite(pooled)) and np.all(pooled[[1, 3]] == 0.0)
    np.testing.assert_allclose(pooled, _reference(layer, sequences, mask)[0], atol=1e-5)


@pytest.mark.parametrize("mode, bidirectional", CASES)
def test_xla_matches_eager(mode, bidirectional):
    layer = _make(mode, bidirectional)
    sequences, mask = _inputs()
    compiled = tf.function(layer.call, jit_compile=True)(sequences, mask)
    np.testing.assert_allclose(compiled.numpy(), layer(sequences, mask).numpy(), atol=1e-6)


@pytest.mark.parametrize("mode, bidirectional", CASES)
def test_config_round_trip(mode, bidirectional):
    layer = SequencePooling(mode, bidirectional=bidirectional, attention_units=9, name="pool")
    clone = SequencePooling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.get_config()["attention_units"] == 9


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_keras_mask_is_picked_up_and_model_round_trips(mode, tmp_path):
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, 4, mask_zero=True)(ids)
    x = keras.layers.GRU(D, return_sequences=True)(x)
    x = SequencePooling(mode, attention_units=5)(x)  # mask comes from the Embedding
    model = keras.Model(ids, keras.layers.Dense(2)(x))
    batch = np.array([[5, 6, 7, 0, 0], [4, 3, 2, 8, 9]], "int32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "destroys the mask" warning
        outputs = model(batch).numpy()
    # Padding is ignored: the padded row gives what the unpadded row gives.
    np.testing.assert_allclose(outputs[0], model(batch[:1, :3]).numpy()[0], atol=1e-6)
    path = tmp_path / "pooling.keras"
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path)(batch).numpy(), outputs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "sum"}, r"\('last', 'mean', 'max', 'attention'\).*mode='sum'"),
        ({"attention_units": 0}, "attention_units=0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequencePooling(**kwargs)


def test_bidirectional_must_be_a_bool():
    with pytest.raises(TypeError, match="bidirectional='yes'"):
        SequencePooling(bidirectional="yes")


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
def test_only_attention_has_weights(mode):
    sequences, mask = _inputs()
    with pytest.raises(ValueError, match="Only attention pooling has weights"):
        SequencePooling(mode)(sequences, mask, return_weights=True)


def test_missing_mask_and_odd_bidirectional_width_are_errors():
    sequences, _ = _inputs()
    with pytest.raises(ValueError, match="mask=None"):
        SequencePooling("mean")(sequences)
    with pytest.raises(ValueError, match="dim=5"):
        SequencePooling("last", bidirectional=True)(sequences[..., :5], np.ones((B, T), bool))
