"""SentimentClassifier: shapes, padding invariance, attention masks, serialisation, fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.sentiment.model import SentimentClassifier

VARIANTS = [
    {"cell": "lstm", "bidirectional": True, "pooling": "attention"},
    {"cell": "gru", "bidirectional": True, "pooling": "last", "num_layers": 2},
    {"cell": "rnn", "bidirectional": False, "pooling": "mean"},
    {"cell": "lstm", "bidirectional": False, "pooling": "max"},
    {"cell": "gru", "bidirectional": False, "pooling": "last"},
]


def small(**kwargs):
    args = {"vocab_size": 50, "units": 6, "embedding_dim": 5, "attention_units": 4} | kwargs
    model = SentimentClassifier(**args)
    model.build()
    return model


def batch(seed=0, lengths=(7, 3, 1, 5)):
    rng = np.random.default_rng(seed)
    ids = np.zeros([len(lengths), max(lengths)], np.int32)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(4, 50, size=n)
    return ids


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_invariance_to_extra_padding(variant):
    model = small(**variant)
    ids = batch()
    logits = model(ids).numpy()
    assert logits.shape == (4, 2) and logits.dtype == np.float32
    padded = np.pad(ids, [(0, 0), (0, 6)])
    np.testing.assert_allclose(model(padded).numpy(), logits, atol=1e-6)
    # A row does not depend on the other rows of its batch.
    alone = model(ids[2:3, :1]).numpy()
    np.testing.assert_allclose(alone, logits[2:3], atol=1e-6)


def test_attention_weights_are_exactly_zero_on_padding():
    model = small(pooling="attention")
    ids = np.pad(batch(), [(0, 0), (0, 2)])
    logits, weights = model(ids, return_attention=True)
    weights = weights.numpy()
    assert weights.shape == ids.shape
    assert np.all(weights[ids == 0] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[ids != 0] > 0)
    np.testing.assert_allclose(logits, model(ids), atol=1e-6)


def test_only_attention_pooling_returns_weights():
    with pytest.raises(ValueError, match="attention"):
        small(pooling="mean")(batch(), return_attention=True)


def test_config_round_trip_and_keras_file(tmp_path):
    model = small(cell="gru", num_layers=2, pooling="attention", spatial_dropout=0.1)
    ids = batch(1)
    clone = SentimentClassifier.from_config(model.get_config())
    clone.build()
    assert clone.get_config() == model.get_config()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(ids), model(ids), atol=1e-6)
    np.testing.assert_allclose(
        loaded(ids, return_attention=True)[1], model(ids, return_attention=True)[1], atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "Received: cell='transformer'"),
        ({"pooling": "sum"}, "Received: pooling='sum'"),
        ({"units": 0}, "Received: units=0"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "Received: dropout=1.0"),
        ({"embedding_dropout": -0.1}, "Received: embedding_dropout=-0.1"),
    ],
)
def test_invalid_arguments_name_the_received_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SentimentClassifier(vocab_size=10, **kwargs)


def test_one_fit_step_changes_every_trainable_weight():
    model = small(
        pooling="attention", num_layers=2, dropout=0.2, embedding_dropout=0.1, spatial_dropout=0.1
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ids = batch(2, lengths=tuple(range(1, 51)))
    labels = np.arange(len(ids)) % 2
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(ids, labels, batch_size=len(ids), epochs=1, verbose=0)
    for w, old in zip(model.trainable_weights, before):
        assert not np.allclose(w.numpy(), old), w.path


def test_dropout_only_in_training():
    model = small(dropout=0.5, embedding_dropout=0.5, spatial_dropout=0.5)
    ids = batch(3)
    np.testing.assert_array_equal(model(ids), model(ids))
    assert not np.allclose(model(ids, training=True), model(ids, training=True))


def test_works_in_a_tf_function_with_dynamic_shapes():
    model = small()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def run(ids):
        return model(ids)

    np.testing.assert_allclose(run(batch()), model(batch()), atol=1e-6)
    assert run(batch(lengths=(2, 9))).shape == (2, 2)
