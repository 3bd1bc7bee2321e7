"""last_axis_matmul: numpy golden values, gradients, and no broadcast batch matmul left in
the training steps of the models that project sequences (a 3x slower tied projection)."""

import textrnn  # noqa: F401, I001  (first: selects the TensorFlow backend)

import numpy as np
import pytest
import tensorflow as tf

from textrnn.layers.projection import last_axis_matmul
from textrnn.sentiment.model import SentimentClassifier
from textrnn.training.losses import SmoothedCrossEntropy
from textrnn.translation.model import Seq2Seq


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (2, 3, 4, 3)])
@pytest.mark.parametrize("transpose", [False, True])
def test_matches_numpy_and_keeps_the_static_shape(shape, transpose):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    kernel = rng.normal(size=(3, 7)).astype(np.float32)
    given = kernel.T if transpose else kernel
    out = last_axis_matmul(tf.constant(x), tf.constant(given), transpose_kernel=transpose)
    np.testing.assert_allclose(out.numpy(), x @ kernel, rtol=1e-5, atol=1e-5)
    assert out.shape == (*shape[:-1], 7)


def test_a_partly_unknown_shape_in_a_graph():
    fn = tf.function(
        lambda x: last_axis_matmul(x, tf.ones([3, 2])),
        input_signature=[tf.TensorSpec([None, None, 3])],
    )
    traced = fn.get_concrete_function()
    assert traced.structured_outputs.shape.as_list() == [None, None, 2]
    assert fn(tf.ones([2, 4, 3])).shape == (2, 4, 2)


@pytest.mark.parametrize("transpose", [False, True])
def test_gradients_equal_the_broadcast_matmul(transpose):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(3, 4, 5)).astype(np.float32))
    kernel = tf.Variable(rng.normal(size=(6, 5) if transpose else (5, 6)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(3, 4, 6)).astype(np.float32))
    grads = []
    for fn in (last_axis_matmul, lambda a, k, t: tf.matmul(a, k, transpose_b=t)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x, kernel, transpose) * upstream)
        grads.append(tape.gradient(loss, [x, kernel]))
    for ours, reference in zip(*grads, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)


def broadcast_batch_matmuls(fn, *args):
    """The BatchMatMul ops of `fn`'s graph (gradients included) with a rank-2 operand: a
    weight broadcast over the batch, one small product per row."""
    graph = tf.function(fn).get_concrete_function(*args).graph
    return [
        op.name
        for op in graph.get_operations()
        if op.type.startswith("BatchMatMul") and any(t.shape.rank == 2 for t in op.inputs)
    ]


def gradient_step(model, loss_fn, inputs, labels):
    def step(inputs, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=True))
        return tape.gradient(loss, model.trainable_variables)

    return step


@pytest.mark.parametrize(
    "options",
    [
        {"attention": "luong", "attention_score": "general", "input_feeding": False},
        {"attention": "luong", "attention_score": "concat", "input_feeding": False},
        {"attention": "bahdanau", "input_feeding": False, "tie_embeddings": False},
    ],
)
def test_the_translator_projects_sequences_with_plain_gemms(options):
    model = Seq2Seq(30, 25, embedding_dim=6, encoder_units=5, decoder_units=8, **options)
    model.build()
    source = tf.constant([[5, 6, 7, 0], [8, 9, 0, 0]])
    target_in = tf.constant([[1, 5, 6], [1, 7, 0]])
    labels = tf.constant([[5, 6, 2], [7, 2, 0]])
    step = gradient_step(model, SmoothedCrossEntropy(0.1), (source, target_in), labels)
    assert broadcast_batch_matmuls(step, (source, target_in), labels) == []


def test_the_classifier_attention_pooling_projects_with_plain_gemms():
    model = SentimentClassifier(vocab_size=50, units=6, embedding_dim=5, attention_units=4)
    model.build()
    ids = tf.constant([[5, 6, 7, 0], [8, 9, 0, 0]])
    labels = tf.constant([0, 1])
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    step = gradient_step(model, loss, ids, labels)
    assert broadcast_batch_matmuls(step, ids, labels) == []
