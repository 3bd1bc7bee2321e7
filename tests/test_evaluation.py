import math

import numpy as np

from textrnn.charlm.model import CharLM
from textrnn.metrics import lm_evaluation


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _model():
    model = CharLM(vocab_size=9, cell="lstm", units=5, embedding_dim=3)
    model.build()
    return model


def test_window_loss_equals_brute_force():
    model = _model()
    ids = np.random.default_rng(0).integers(4, 9, 200).astype("int32")
    got = lm_evaluation.window_loss(model, ids, seq_len=10, num_windows=7, seed=3, batch_size=3)
    nll = []
    # The protocol's windows, written out: starts drawn uniformly from [0, 200 - 10 - 1)
    # by numpy's default generator with the seed (not by the code under test).
    offsets = np.random.default_rng(3).integers(0, 200 - 10 - 1, size=7)
    assert offsets.tolist() == lm_evaluation.window_offsets(ids.size, 10, 7, seed=3).tolist()
    for o in offsets:
        logits = model(ids[None, o : o + 10]).numpy()[0]
        nll.extend(-_log_softmax(logits)[np.arange(10), ids[o + 1 : o + 11]])
    np.testing.assert_allclose(got, np.mean(nll), rtol=1e-5)


def test_sequential_loss_independent_of_chunking_and_equals_one_pass():
    model = _model()
    ids = np.random.default_rng(1).integers(4, 9, 50).astype("int32")
    logits = model(ids[None, :-1]).numpy()[0]
    expected = np.mean(-_log_softmax(logits)[np.arange(49), ids[1:]])
    for chunk in (7, 49, 1000):
        np.testing.assert_allclose(
            lm_evaluation.sequential_loss(model, ids, chunk_len=chunk), expected, rtol=1e-5
        )


def test_bits_per_char():
    assert lm_evaluation.bits_per_char(math.log(2)) == 1.0
