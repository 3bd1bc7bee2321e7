import math

import numpy as np

from textrnn.metrics.language_model import BitsPerCharacter, Perplexity
from textrnn.text.special_tokens import PAD_ID


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_perplexity_and_bpc_equal_numpy_over_uneven_batches():
    rng = np.random.default_rng(0)
    batches = [
        (rng.integers(1, 7, (b, t)), rng.normal(size=(b, t, 7)).astype("float32"))
        for b, t in [(2, 5), (1, 3), (4, 2)]
    ]
    ppl, bpc = Perplexity(ignore_id=None), BitsPerCharacter(ignore_id=None)
    nll = []
    for y, logits in batches:
        ppl.update_state(y, logits)
        bpc.update_state(y, logits)
        nll.extend(-np.take_along_axis(_log_softmax(logits), y[..., None], -1).ravel())
    mean = float(np.mean(nll))  # token-weighted, not a mean of per-batch perplexities
    np.testing.assert_allclose(float(ppl.result()), math.exp(mean), rtol=1e-5)
    np.testing.assert_allclose(float(bpc.result()), mean / math.log(2), rtol=1e-5)
    per_batch = np.mean(
        [
            math.exp(np.mean(-np.take_along_axis(_log_softmax(lg), y[..., None], -1)))
            for y, lg in batches
        ]
    )
    assert abs(per_batch - float(ppl.result())) > 1e-3  # the biased average differs


def test_padding_targets_are_not_scored():
    logits = np.zeros((1, 3, 4), "float32")
    logits[0, 2, PAD_ID] = 50.0  # a confident prediction at a padded target must not count
    m = Perplexity()
    m.update_state(np.array([[1, 2, PAD_ID]]), logits)
    np.testing.assert_allclose(float(m.result()), 4.0, rtol=1e-6)
    m.reset_state()
    assert float(m.count) == 0.0
