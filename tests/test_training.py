import csv
import json
import shutil
import sys

import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES, kill_after_first_epoch_then_resume

from textrnn.charlm.train import train_charlm
from textrnn.text.vocabulary import VocabularyError
from textrnn.training.config import load_config
from textrnn.training.runs import RunDirError, load_run


def test_tiny_run_writes_everything_and_learns(tiny_run):
    for name in (
        "config.toml",
        "vocab.txt",
        "model.keras",
        "history.csv",
        "progress.json",
        "results.json",
        "backup",
        "logs",
    ):
        assert (tiny_run / name).exists(), name
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["train_tokens"] == 2 * 3 * 8 * 32
    assert results["val_loss_windows"] < np.log(results["config"]["model"]["units"] * 10)
    assert abs(results["val_bpc_windows"] - results["val_loss_windows"] / np.log(2)) < 1e-3
    model, tokenizer, cfg = load_run(tiny_run)
    assert model.vocab_size == tokenizer.vocab_size and cfg.model.units == 32


def test_stream_windows_train(tmp_path):
    cfg = load_config(None, TINY_OVERRIDES + ["data.windows=stream", "train.epochs=1"])
    results = train_charlm(cfg, tmp_path / "run", verbose=0)
    assert np.isfinite(results["val_loss_sequential"])


def test_stream_training_equals_a_step_by_step_replay(tmp_path):
    """The TBPTT path (stream windows, the state-carrying wrapper, the reset at each
    epoch) against a plain replay: a GradientTape step per batch in stream order, the
    final state of each batch fed to the next with the gradient stopped, zeros at the
    start of each epoch, and the same optimizer."""
    import keras
    import tensorflow as tf

    from textrnn.charlm.data import load_char_corpus
    from textrnn.charlm.train import build_charlm
    from textrnn.data.pipelines import lm_stream_windows
    from textrnn.text.char_tokenizer import CharTokenizer
    from textrnn.training.optimizers import make_optimizer

    epochs, steps = 2, 4
    overrides = [o for o in TINY_OVERRIDES if not o.startswith(("train.epochs", "train.steps"))]
    overrides += ["data.windows=stream", f"train.epochs={epochs}", f"train.steps_per_epoch={steps}"]
    cfg = load_config(None, overrides)
    run_dir = tmp_path / "run"
    train_charlm(cfg, run_dir, verbose=0)
    model, _, _ = load_run(run_dir)
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))

    # The replay, written with plain Keras and TensorFlow.
    corpus = load_char_corpus(cfg.data.dataset)
    tokenizer = CharTokenizer.from_text(corpus["train"])
    train_ids = tokenizer.encode_text(corpus["train"])
    keras.utils.set_random_seed(cfg.train.seed)  # the same initial weights as training
    lm = build_charlm(cfg, tokenizer.vocab_size)
    optimizer = make_optimizer(cfg.train)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    batches = iter(lm_stream_windows(train_ids, cfg.data.seq_len, cfg.data.batch_size).repeat())
    weights_after, epoch_losses = [], []
    for _ in range(epochs):
        state = lm.initial_state(cfg.data.batch_size)  # the reset at the start of the epoch
        losses = []
        for _ in range(steps):
            inputs, targets = next(batches)
            with tf.GradientTape() as tape:
                logits, new_state = lm(
                    inputs, initial_state=state, training=True, return_state=True
                )
                loss = loss_fn(targets, logits)
            gradients = tape.gradient(loss, lm.trainable_variables)
            optimizer.apply_gradients(zip(gradients, lm.trainable_variables))
            state = tf.nest.map_structure(tf.stop_gradient, new_state)
            losses.append(float(loss))
        epoch_losses.append(np.mean(losses))
        weights_after.append([w.numpy() for w in lm.weights])

    np.testing.assert_allclose([float(r["loss"]) for r in history], epoch_losses, rtol=1e-4)
    best = int(np.argmin([float(r["val_loss"]) for r in history]))
    for saved, replayed in zip(model.weights, weights_after[best], strict=True):
        np.testing.assert_allclose(saved.numpy(), replayed, rtol=1e-4, atol=1e-5)


def test_run_dir_guards(tiny_run, tmp_path):
    cfg = load_config(tiny_run / "config.toml")
    with pytest.raises(RunDirError, match="--resume"):
        train_charlm(cfg, tiny_run, verbose=0)
    other = load_config(tiny_run / "config.toml", ["train.learning_rate=0.5"])
    with pytest.raises(RunDirError, match="differs"):
        train_charlm(other, tiny_run, resume=True, verbose=0)
    with pytest.raises(RunDirError, match="holds no run"):
        train_charlm(cfg, tmp_path / "empty", resume=True, verbose=0)


def test_corpus_too_short_for_a_window(tmp_path):
    corpus = tmp_path / "short.txt"
    corpus.write_text("tiny text " * 20, encoding="utf-8")
    cfg = load_config(None, [f"data.dataset='{corpus}'", "data.seq_len=64"])
    with pytest.raises(ValueError, match="fewer than one window"):
        train_charlm(cfg, tmp_path / "run", verbose=0)


def test_vocabulary_that_does_not_match_the_model(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    with open(copy / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("U+2603\n")
    with pytest.raises(VocabularyError, match="do not belong together"):
        load_run(copy)
    (copy / "model.keras").write_bytes(b"not a zip")
    with pytest.raises((ValueError, VocabularyError)):
        load_run(copy)


def test_resume_after_kill(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "textrnn.cli",
        "train",
        "charlm",
        "--quiet",
        "--recipe",
        str(REPO / "models/charlm-shakespeare/config.toml"),
        "--run-dir",
        str(run_dir),
    ]
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("train.")] + [
        "train.epochs=3",
        "train.steps_per_epoch=150",
        "train.validation_windows=8",
        "train.early_stopping_patience=0",
        "train.max_minutes=0",
    ]
    for o in overrides:
        args += ["--set", o]
    kill_after_first_epoch_then_resume(args, run_dir, total_epochs=3)
    with open(run_dir / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs[-1] == 2 and set(range(3)) <= set(epochs)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train_tokens"] >= 3 * 150 * 8 * 32 * 0.99


def _ema_fit(run_dir, epochs, momentum, data):
    """A linear regression trained by `fit_resumable` (constant LR, full-batch steps in a
    fixed order, so that two runs are bit-for-bit comparable)."""
    import keras
    import tensorflow as tf

    from textrnn.training.config import TrainConfig
    from textrnn.training.loop import fit_resumable
    from textrnn.training.optimizers import make_optimizer
    from textrnn.training.progress import TrainingProgress

    x, y, x_val, y_val = data
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([4]), keras.layers.Dense(1)])
    train = TrainConfig(
        epochs=epochs,
        steps_per_epoch=5,
        learning_rate=0.05,
        lr_schedule="constant",
        clipnorm=0.0,
        ema_momentum=momentum,
    )
    model.compile(optimizer=make_optimizer(train), loss="mse")
    run_dir.mkdir(exist_ok=True)
    progress = TrainingProgress(run_dir / "progress.json", 1, 0.0)
    train_ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    fit_resumable(model, train_ds, (x_val, y_val), train, run_dir, progress,
                  steps_per_epoch=5, verbose=0)  # fmt: skip
    return model


def test_moving_average_weights_are_validated_checkpointed_and_resumable(tmp_path):
    rng = np.random.default_rng(0)
    x, x_val = rng.normal(size=[64, 4]), rng.normal(size=[32, 4])
    w = np.array([[1.0], [-2.0], [0.5], [3.0]])
    data = (x, x @ w + 0.1, x_val, x_val @ w + 0.1)
    momentum = 0.6

    # Reference: the raw trajectory of the same training without averaging, and the
    # average computed in numpy the way Keras defines it (the first step copies).
    import keras

    raw_model = _ema_fit(tmp_path / "raw", 4, 0.0, data)
    keras.utils.set_random_seed(0)
    replay = keras.Sequential([keras.Input([4]), keras.layers.Dense(1)])
    replay.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    average, val_losses = None, []

    class Average(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nonlocal average
            now = [v.numpy() for v in replay.trainable_variables]
            average = now if average is None else [
                momentum * a + (1 - momentum) * v for a, v in zip(average, now)
            ]  # fmt: skip

        def on_epoch_end(self, epoch, logs=None):
            kernel, bias = average
            val_losses.append(float(np.mean((data[2] @ kernel + bias - data[3]) ** 2)))

    replay.fit(x, data[1], batch_size=64, epochs=20, verbose=0, shuffle=False,
               callbacks=[Average()])  # fmt: skip
    replay_raw = [v.numpy() for v in replay.trainable_variables]
    np.testing.assert_allclose(
        replay_raw[0], raw_model.trainable_variables[0].numpy(), rtol=1e-5
    )  # the replay follows the same raw trajectory

    averaged = _ema_fit(tmp_path / "ema", 4, momentum, data)
    with open(tmp_path / "ema" / "history.csv") as f:
        logged = [float(row["val_loss"]) for row in csv.DictReader(f)]
    # Validation scores the average, not the raw weights, after every epoch ...
    np.testing.assert_allclose(logged, val_losses[4::5][:4], rtol=1e-4)
    # ... and the model kept (the best epoch: the last, loss falls) is the average.
    np.testing.assert_allclose(averaged.trainable_variables[0].numpy(), average[0], rtol=1e-5)

    # A run stopped after 2 epochs and resumed to 4 ends exactly where an uninterrupted
    # run ends: the backup holds the raw weights and the optimizer's average, not a swap.
    _ema_fit(tmp_path / "resumed", 2, momentum, data)
    resumed = _ema_fit(tmp_path / "resumed", 4, momentum, data)
    for a, b in zip(resumed.trainable_variables, averaged.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_moving_average_momentum_out_of_range(momentum):
    from textrnn.training.config import ConfigError, TrainConfig
    from textrnn.training.optimizers import make_optimizer

    with pytest.raises(ConfigError, match="ema_momentum"):
        make_optimizer(TrainConfig(ema_momentum=momentum))


def test_a_resume_with_another_recipe_names_only_what_differs(tiny_run):
    other = load_config(tiny_run / "config.toml", ["train.learning_rate=0.5", "model.units=33"])
    with pytest.raises(RunDirError) as error:
        train_charlm(other, tiny_run, resume=True, verbose=0)
    lines = str(error.value).splitlines()
    assert lines[1:3] == [
        "  model.units: started with 32, requested 33",
        "  train.learning_rate: started with 0.002, requested 0.5",
    ]
    assert "Resume with `--resume` alone" in lines[3] and len(lines) == 4
    assert "change only train.checkpoint_every_minutes" in lines[3]


def test_a_resume_may_change_only_when_it_stops_and_checkpoints(tiny_run, tmp_path, capsys):
    from textrnn.training.runs import prepare_run_dir

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    saved = load_config(copy / "config.toml")
    allowed = load_config(
        copy / "config.toml", ["train.max_minutes=45", "train.keep_checkpoints=3"]
    )
    prepare_run_dir(copy, allowed, resume=True)
    assert capsys.readouterr().err.splitlines() == [
        f"--resume: train.keep_checkpoints changed from {saved.train.keep_checkpoints!r} to 3",
        f"--resume: train.max_minutes changed from {saved.train.max_minutes!r} to 45.0",
    ]
    assert load_config(copy / "config.toml") == allowed
    for change in ["train.epochs=9", "train.seed=5", "train.deterministic=true"]:
        with pytest.raises(RunDirError, match=change.split("=")[0]):
            prepare_run_dir(copy, load_config(copy / "config.toml", [change]), resume=True)


def test_a_truncated_model_file_is_named_as_such(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    data = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.keras is truncated or corrupt") as error:
        load_run(copy)
    assert "File not found" not in str(error.value)


def test_a_non_finite_loss_stops_training_with_an_error_that_says_where(tmp_path):
    from textrnn.training.guards import NonFiniteLossError

    overrides = [o for o in TINY_OVERRIDES if not o.startswith("train.epochs")]
    # A learning rate this large, unclipped, overflows the logits within a few steps.
    cfg = load_config(
        None, [*overrides, "train.epochs=3", "train.learning_rate=1e37", "train.clipnorm=0.0"]
    )
    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf) at step \d+ \(epoch 1"):
        train_charlm(cfg, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "model.keras").exists()
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_diverged_but_finite_run_reports_an_infinite_perplexity(tmp_path):
    # Clipped, the same huge learning rate keeps the loss finite but enormous (about
    # 1e30 nats): exp() of it overflowed and crashed the final evaluation.
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("train.epochs")]
    cfg = load_config(None, [*overrides, "train.epochs=1", "train.learning_rate=1e30"])
    results = train_charlm(cfg, tmp_path / "run", verbose=0)
    assert results["val_loss_sequential"] > 709
    assert results["val_perplexity_sequential"] == float("inf")
