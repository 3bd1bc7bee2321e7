import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.charlm.model import CharLM
from textrnn.charlm.train import StateCarryingLM

CONFIGS = [
    {"cell": "lstm", "num_layers": 2},
    {"cell": "gru", "num_layers": 1, "layer_norm": True},
    {"cell": "rnn", "num_layers": 2, "dropout": 0.1},
]


def _model(**kw):
    kw = {"vocab_size": 11, "units": 6, "embedding_dim": 4, **kw}
    model = CharLM(**kw)
    model.build()
    return model


@pytest.mark.parametrize("kw", CONFIGS)
def test_shapes_and_dtypes(kw):
    model = _model(**kw)
    x = np.random.default_rng(0).integers(0, 11, (3, 5)).astype("int32")
    logits, state = model(x, return_state=True)
    assert logits.shape == (3, 5, 11) and logits.dtype == tf.float32
    assert len(state) == kw["num_layers"]
    assert all(s.shape == (3, 6) for layer in state for s in layer)
    assert len(state[0]) == (2 if kw["cell"] == "lstm" else 1)


@pytest.mark.parametrize("kw", CONFIGS)
def test_step_by_step_equals_teacher_forcing(kw):
    model = _model(**kw)
    x = np.random.default_rng(1).integers(0, 11, (2, 7)).astype("int32")
    expected = model(x).numpy()
    state, steps = model.initial_state(2), []
    for t in range(7):
        logits, state = model.step(tf.constant(x[:, t]), state)
        steps.append(logits.numpy())
    np.testing.assert_allclose(np.stack(steps, 1), expected, atol=1e-5)


@pytest.mark.parametrize(
    "kw", CONFIGS + [{"cell": "lstm", "num_layers": 1}, {"cell": "gru", "num_layers": 2}]
)
def test_decoding_step_equals_step(kw):
    model = _model(**kw)
    # Non-zero biases and state, so that every term of the precomputed table matters.
    for weight in model.weights:
        weight.assign(np.random.default_rng(2).normal(0, 0.5, weight.shape).astype("float32"))
    fast = model.decoding_step()
    rng = np.random.default_rng(3)
    state = tf.nest.map_structure(
        lambda s: tf.constant(rng.normal(size=s.shape).astype("float32")), model.initial_state(3)
    )
    fast_state = state
    for _ in range(5):
        ids = tf.constant(rng.integers(0, 11, 3).astype("int32"))
        logits, state = model.step(ids, state)
        fast_logits, fast_state = fast(ids, fast_state)
        np.testing.assert_allclose(fast_logits, logits, atol=1e-5)
        tf.nest.map_structure(
            lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), fast_state, state
        )


def test_prime_returns_last_char_and_state_before_it():
    model = _model(cell="lstm", num_layers=2)
    x = np.random.default_rng(2).integers(4, 11, (3, 6)).astype("int32")
    lengths = np.array([6, 3, 1])
    start, state = model.prime(x, lengths)
    np.testing.assert_array_equal(start.numpy(), [x[0, 5], x[1, 2], x[2, 0]])
    for row, n in enumerate(lengths):
        ref = model.initial_state(1)
        if n > 1:
            _, ref = model(x[row : row + 1, : n - 1], return_state=True)
        for layer, ref_layer in zip(state, ref):
            for s, r in zip(layer, ref_layer):
                np.testing.assert_allclose(s.numpy()[row], r.numpy()[0], atol=1e-6)


def test_keras_save_load_and_config_round_trip(tmp_path):
    model = _model(cell="gru", num_layers=2, layer_norm=True, dropout=0.2)
    x = np.arange(10, dtype="int32").reshape(2, 5)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert isinstance(again, CharLM)
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
    clone = CharLM.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"units": 0}, "units"),
        ({"cell": "transformer"}, "cell"),
        ({"dropout": 1.5}, "dropout"),
        ({"vocab_size": -1}, "vocab_size"),
    ],
)
def test_invalid_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        CharLM(**{"vocab_size": 11, **kw})


def test_one_fit_step_changes_every_weight():
    model = _model(cell="lstm", num_layers=2, layer_norm=True)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = np.random.default_rng(3).integers(0, 11, (4, 8)).astype("int32")
    model.fit(x, np.roll(x, -1, 1), epochs=1, batch_size=4, verbose=0)
    for w, b in zip(model.trainable_weights, before):
        assert not np.allclose(w.numpy(), b), w.name


def test_state_carrying_wrapper_continues_the_stream():
    lm = _model(cell="gru", num_layers=1)
    wrapper = StateCarryingLM(lm, batch_size=2)
    x = np.random.default_rng(4).integers(0, 11, (2, 8)).astype("int32")
    # Two consecutive 4-char windows with the carried state equal one 8-char window.
    first = wrapper(x[:, :4], training=True)
    second = wrapper(x[:, 4:], training=True)
    full = lm(x)
    np.testing.assert_allclose(np.concatenate([first, second], 1), full, atol=1e-5)
    wrapper.reset_carried_state()
    np.testing.assert_allclose(wrapper(x[:, 4:], training=True), lm(x[:, 4:]), atol=1e-5)
