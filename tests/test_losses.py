"""SmoothedCrossEntropy: loss and hand-written gradient against numpy."""

import textrnn  # noqa: F401, I001  (first: selects the TensorFlow backend)

import numpy as np
import pytest
import tensorflow as tf

from textrnn.training.losses import SmoothedCrossEntropy, smoothed_token_cross_entropy


def numpy_reference(labels, logits, e):
    """Per-token loss and its gradient with respect to the logits."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    onehot = np.eye(logits.shape[-1])[labels]
    loss = -(1 - e) * (onehot * log_p).sum(-1) - e * log_p.mean(-1)
    grad = np.exp(log_p) - (1 - e) * onehot - e / logits.shape[-1]
    return loss, grad


@pytest.mark.parametrize("e", [0.0, 0.1, 0.6])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 2, 3)])
def test_loss_and_gradient_match_numpy(e, shape):
    rng = np.random.default_rng(0)
    vocab = 7
    logits = (4 * rng.normal(size=(*shape, vocab))).astype(np.float32)
    labels = rng.integers(0, vocab, shape)
    upstream = rng.normal(size=shape).astype(np.float32)
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = smoothed_token_cross_entropy(tf.constant(labels), x, e)
        total = tf.reduce_sum(loss * upstream)
    grad = tape.gradient(total, x)
    expected_loss, expected_grad = numpy_reference(labels, logits.astype(np.float64), e)
    assert loss.shape == shape
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        grad.numpy(), upstream[..., None] * expected_grad, rtol=1e-5, atol=1e-6
    )


def test_weighted_mean_over_real_tokens_in_a_compiled_function():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
    labels = np.array([[1, 2, 3, 0], [4, 0, 0, 0]])
    weights = (labels != 0).astype(np.float32)
    per_token, _ = numpy_reference(labels, logits.astype(np.float64), 0.2)
    loss = tf.function(SmoothedCrossEntropy(0.2).__call__)(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(loss), (per_token * weights).sum() / weights.sum(), rtol=1e-5)


def test_a_label_outside_the_vocabulary_is_an_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match="label"):
        smoothed_token_cross_entropy(tf.constant([[1, 9]]), tf.zeros([1, 2, 4]), 0.1)
