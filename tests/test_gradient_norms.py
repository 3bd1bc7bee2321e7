"""The per-step global gradient norm: recorded by the optimizer, logged by the loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_OVERRIDES

from textrnn.training.config import load_config
from textrnn.training.gradient_norms import (
    COLUMNS,
    GRADIENT_NORMS_FILE,
    GradientNormLog,
    read_gradient_norms,
    track_gradient_norm,
)
from textrnn.training.optimizers import make_optimizer


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.SimpleRNN(4), keras.layers.Dense(2)]
    )
    return model


@pytest.mark.parametrize("clipnorm", [0.0, 1e-3])
def test_the_recorded_norm_is_the_global_norm_of_the_unclipped_gradients(clipnorm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5, 3)).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    model = _tiny_model()
    reference = _tiny_model()
    reference.set_weights(model.get_weights())
    train = load_config(None, ["train.lr_schedule='constant'", f"train.clipnorm={clipnorm}"]).train
    model.compile(optimizer=make_optimizer(train, 10), loss="mse")
    model.train_on_batch(x, y)
    # Independently: one tape on the same weights and batch, numpy norm.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(reference(x) - y))
    grads = tape.gradient(loss, reference.trainable_variables)
    expected = np.sqrt(sum(float(np.sum(g.numpy().astype(np.float64) ** 2)) for g in grads))
    assert float(model.optimizer.gradient_norm.numpy()) == pytest.approx(expected, rel=1e-5)
    # The norm is not one of the optimizer's saved variables.
    assert all(v is not model.optimizer.gradient_norm for v in model.optimizer.variables)


def test_tracking_twice_wraps_once():
    optimizer = track_gradient_norm(keras.optimizers.Adam())
    apply = optimizer.apply
    assert track_gradient_norm(optimizer) is optimizer and optimizer.apply is apply


def test_a_training_run_writes_one_row_per_step(tmp_path):
    from textrnn.charlm.train import train_charlm

    run = tmp_path / "run"
    train_charlm(load_config(None, [*TINY_OVERRIDES, "train.clipnorm=1e-4"]), run, verbose=0)
    text = (run / GRADIENT_NORMS_FILE).read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = read_gradient_norms(run / GRADIENT_NORMS_FILE)
    assert [(r["step"], r["epoch"], r["batch"]) for r in rows] == [
        (1, 0, 0), (2, 0, 1), (3, 0, 2), (4, 1, 0), (5, 1, 1), (6, 1, 2)
    ]  # fmt: skip
    assert all(np.isfinite(r["gradient_norm"]) and r["gradient_norm"] > 0 for r in rows)
    # With a clip norm this small every step is clipped.
    assert [r["clipped"] for r in rows] == [1] * 6
    assert list((run / "logs" / "steps").glob("events.out.tfevents.*"))


def test_a_resume_drops_rows_beyond_its_checkpoint_and_half_written_lines(tmp_path):
    optimizer = track_gradient_norm(keras.optimizers.Adam())
    log = GradientNormLog(tmp_path, optimizer, clipnorm=1.0, tensorboard=False)
    log.resume_at(0)
    for step in (1, 2, 3):
        optimizer.gradient_norm.assign(float(step))
        log.record(step, 0, step - 1)
    log.flush()
    path = tmp_path / GRADIENT_NORMS_FILE
    with open(path, "a", encoding="utf-8") as f:
        f.write("4,0,3,0.2")  # killed half-way through a line
    assert [r["step"] for r in read_gradient_norms(path)] == [1, 2, 3]
    GradientNormLog(tmp_path, optimizer, tensorboard=False).resume_at(2)
    assert path.read_text() == "step,epoch,batch,gradient_norm,clipped\n1,0,0,1.0,0\n2,0,1,2.0,1\n"
