"""Seq2Seq: step() reproduces teacher forcing, masks, serialisation, loss, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textrnn.decoding import BeamSearch, decode
from textrnn.text.special_tokens import BOS_ID, EOS_ID
from textrnn.training.losses import SmoothedCrossEntropy
from textrnn.translation.model import Seq2Seq
from textrnn.translation.train import ScheduledSamplingTrainer

VARIANTS = {
    "bahdanau-lstm": {"attention": "bahdanau", "input_feeding": False},
    "luong-general-feeding": {"attention": "luong", "attention_score": "general"},
    "luong-dot-gru-parallel": {
        "attention": "luong",
        "attention_score": "dot",
        "cell": "gru",
        "input_feeding": False,
        "encoder_units": 8,
    },
    "luong-concat-deep": {
        "attention": "luong",
        "attention_score": "concat",
        "bidirectional": False,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "tie_embeddings": False,
    },
    "bahdanau-rnn-zero-bridge": {
        "attention": "bahdanau",
        "input_feeding": False,
        "cell": "rnn",
        "bridge": "zero",
    },
}


def small(**kwargs):
    args = {
        "source_vocab_size": 30,
        "target_vocab_size": 25,
        "embedding_dim": 6,
        "encoder_units": 5,
        "decoder_units": 16,
        "attention_units": 7,
        "dropout": 0.1,
    }
    model = Seq2Seq(**(args | kwargs))
    model.build()
    return model


def pairs(seed=0, source_lengths=(5, 2, 4), target_lengths=(3, 6, 1)):
    rng = np.random.default_rng(seed)
    src = np.zeros([len(source_lengths), max(source_lengths)], np.int32)
    tgt = np.zeros([len(target_lengths), max(target_lengths)], np.int32)
    for i, (s, t) in enumerate(zip(source_lengths, target_lengths)):
        src[i, :s] = rng.integers(4, 30, size=s)
        tgt[i, 0] = BOS_ID
        tgt[i, 1:t] = rng.integers(4, 25, size=t - 1)
    return src, tgt


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_step_by_step_reproduces_teacher_forcing(name):
    model = small(**VARIANTS[name])
    src, tgt = pairs()
    logits, attention = model((src, tgt), return_attention=True)
    assert logits.shape == (3, tgt.shape[1], 25) and attention.shape == (3, tgt.shape[1], 5)
    context, state = model.encode(src)
    for t in range(tgt.shape[1]):
        step_logits, state, step_attention = model.step(tf.constant(tgt[:, t]), state, context)
        real = tgt[:, t] != 0  # after a target's end, positions are padding (never scored)
        np.testing.assert_allclose(step_logits[real], logits[:, t][real], atol=1e-5)
        np.testing.assert_allclose(step_attention[real], attention[:, t][real], atol=1e-6)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_padding_never_matters_and_masked_attention_is_exactly_zero(name):
    model = small(**VARIANTS[name])
    src, tgt = pairs(1)
    logits, attention = model((src, tgt), return_attention=True)
    assert np.all(attention.numpy()[src[:, None, :].repeat(tgt.shape[1], 1) == 0] == 0.0)
    real = tgt != 0
    more = model((np.pad(src, [(0, 0), (0, 4)]), np.pad(tgt, [(0, 0), (0, 3)])))
    np.testing.assert_allclose(
        more[:, : tgt.shape[1]].numpy()[real], logits.numpy()[real], atol=1e-5
    )
    alone = model((src[1:2, :2], tgt[1:2]))
    np.testing.assert_allclose(alone, logits[1:2], atol=1e-5)


def test_parallel_and_sequential_decoders_agree():
    model = small(**VARIANTS["luong-dot-gru-parallel"])
    src, tgt = pairs(2)
    parallel = model((src, tgt)).numpy()
    sequential = model((src, tgt), sample_probability=tf.constant(0.0)).numpy()
    real = tgt != 0
    np.testing.assert_allclose(parallel[real], sequential[real], atol=1e-5)


def test_config_round_trip_and_keras_file(tmp_path):
    model = small(**VARIANTS["luong-concat-deep"])
    src, tgt = pairs(3)
    assert Seq2Seq.from_config(model.get_config()).get_config() == model.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded((src, tgt)), model((src, tgt)), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention": "bahdanau", "input_feeding": True}, "input_feeding"),
        ({"attention_score": "dot"}, "encoder_units \\* directions = 10, decoder_units = 16"),
        ({"attention": "monotonic"}, "Received: attention='monotonic'"),
        ({"bridge": "mean"}, "Received: bridge='mean'"),
        ({"decoder_units": 0}, "Received: decoder_units=0"),
    ],
)
def test_invalid_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_smoothed_cross_entropy_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    labels = np.array([[1, 2, 0], [4, 0, 0]])
    weights = (labels != 0).astype(np.float32)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    expected = ((0.9 * nll + 0.1 * -log_p.mean(-1)) * weights).sum() / weights.sum()
    loss = SmoothedCrossEntropy(0.1)(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    plain = SmoothedCrossEntropy(0.0)(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(plain), (nll * weights).sum() / weights.sum(), rtol=1e-5)


@pytest.mark.parametrize("scheduled", [False, True])
def test_one_fit_step_changes_every_trainable_weight(scheduled):
    model = small(**VARIANTS["luong-general-feeding"])
    trainer = ScheduledSamplingTrainer(model) if scheduled else model
    if scheduled:
        trainer.probability.assign(0.5)
    trainer.compile(optimizer=keras.optimizers.Adam(0.05), loss=SmoothedCrossEntropy(0.1))
    src, tgt = pairs(4, source_lengths=(5, 3, 4, 2), target_lengths=(4, 6, 2, 5))
    target_out = np.concatenate([tgt[:, 1:], np.zeros([4, 1], np.int32)], 1)
    target_out[np.arange(4), np.array([4, 6, 2, 5]) - 1] = EOS_ID
    before = [w.numpy().copy() for w in model.trainable_weights]
    trainer.fit(
        (src, tgt),
        target_out,
        sample_weight=(target_out != 0).astype(np.float32),
        batch_size=4,
        epochs=1,
        verbose=0,
    )
    for w, old in zip(model.trainable_weights, before):
        assert not np.allclose(w.numpy(), old), w.path


def test_scheduled_sampling_feeds_the_model_guesses():
    model = small(**VARIANTS["bahdanau-lstm"], dropout=0.0)
    src, tgt = pairs(5)
    teacher = model((src, tgt), training=True)
    np.testing.assert_allclose(
        model((src, tgt), training=True, sample_probability=tf.constant(0.0)), teacher, atol=1e-5
    )
    sampled = model((src, tgt), training=True, sample_probability=tf.constant(1.0))
    np.testing.assert_allclose(sampled[:, 0], teacher[:, 0], atol=1e-5)  # step 0 reads <s>
    assert not np.allclose(sampled[:, 2:], teacher[:, 2:], atol=1e-3)


def test_beam_search_over_the_model_scores_by_teacher_forcing():
    model = small(**VARIANTS["luong-general-feeding"])
    src, _ = pairs(6)
    context, state = model.encode(src)
    result = decode(
        model.step, state, tf.fill([3], BOS_ID), BeamSearch(3, n_best=2), 6, context=context
    )
    log_probs = tf.nn.log_softmax(
        model((src, np.concatenate([np.full([3, 1], BOS_ID), result.ids[:, 0, :-1]], 1)))
    ).numpy()
    for row in range(3):
        n = int(result.lengths[row, 0])
        ids = result.ids[row, 0, :n].numpy()
        expected = sum(log_probs[row, t, ids[t]] for t in range(n))
        np.testing.assert_allclose(result.scores[row, 0], expected, atol=1e-4)
