"""Numerics options: mixed precision and XLA train steps run on the tiny character model
and end within `TOLERANCE` of float32's final training loss; bad settings are refused
when the recipe is read or the model does not match it."""

import keras
import pytest
import tensorflow as tf
from conftest import TINY_OVERRIDES

from textrnn.charlm.train import build_charlm, train_charlm
from textrnn.training.config import ConfigError, load_config
from textrnn.training.gradient_norms import read_gradient_norms
from textrnn.training.launch import training_scope
from textrnn.training.numerics import prepare_model
from textrnn.training.runs import load_keras_model

TOLERANCE = 0.02  # relative difference of the final training loss from float32's
SETS = [
    *[o for o in TINY_OVERRIDES if not o.startswith(("train.epochs", "train.steps_per_epoch"))],
    "model.dropout=0.0",
    "train.epochs=2",
    "train.steps_per_epoch=15",
    "train.learning_rate=0.03",  # the loss falls well beyond the tolerance (asserted)
    "train.lr_schedule=constant",
    "train.checkpoint_every_minutes=0",
]
# Measured here (relative to float32's final loss): mixed_bfloat16 5e-5, mixed_float16
# 3e-7, XLA 0; the first steps' gradient norms differ by 3e-4, 1e-5 and 1e-7.
OPTIONS = {
    "mixed_bfloat16": ["train.precision=mixed_bfloat16"],
    "mixed_float16": ["train.precision=mixed_float16"],
    "xla": ["train.jit_compile=true"],
}


def _train(tmp_path, name, extra):
    """Trains the tiny model; returns the first and the last epoch's training loss, the
    per-step gradient norms and the run directory."""
    cfg = load_config(None, [*SETS, *extra])
    run_dir = tmp_path / name
    with training_scope(cfg.train):
        train_charlm(cfg, run_dir, verbose=0)
    rows = [r.split(",") for r in (run_dir / "history.csv").read_text().splitlines()]
    column = rows[0].index("loss")
    norms = [r["gradient_norm"] for r in read_gradient_norms(run_dir / "gradient_norms.csv")]
    return float(rows[1][column]), float(rows[-1][column]), norms, run_dir


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    first, last, norms, _ = _train(tmp_path_factory.mktemp("numerics"), "float32", [])
    # Training moves the loss by far more than the tolerance, so a broken option shows.
    assert first - last > 3 * TOLERANCE * last, (first, last)
    return last, norms


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_option_ends_near_float32(option, float32_run, tmp_path):
    float32_loss, float32_norms = float32_run
    _, loss, norms, run_dir = _train(tmp_path, option, OPTIONS[option])
    assert abs(loss - float32_loss) <= TOLERANCE * float32_loss, (loss, float32_loss)
    # The option really changed the arithmetic (it is not float32 under another name).
    assert len(norms) == len(float32_norms) and norms != float32_norms
    assert keras.config.dtype_policy().name == "float32"  # the policy was restored
    # A saved model loads computing in float32: its layers take the global policy.
    model = load_keras_model(run_dir / "model.keras")
    assert model.get_layer("logits").compute_dtype == "float32"


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_16_bits_with_float32_logits(precision):
    cfg = load_config(None, [*SETS, f"train.precision={precision}"])
    with training_scope(cfg.train):
        model = build_charlm(cfg, vocab_size=11)
    prepare_model(model, cfg.train)
    assert model.get_layer("lstm_0").compute_dtype == precision.removeprefix("mixed_")
    assert model.get_layer("logits").compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    assert model(tf.zeros((2, 3), tf.int32)).dtype == tf.float32


def test_mixed_float16_scales_the_loss(tmp_path):
    cfg = load_config(None, [*SETS, "train.precision=mixed_float16"])
    from textrnn.training.optimizers import make_optimizer

    with training_scope(cfg.train):
        optimizer = make_optimizer(cfg.train, 10)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert hasattr(optimizer, "gradient_norm")


def test_a_model_built_outside_the_policy_is_refused(tmp_path):
    cfg = load_config(None, [*SETS, "train.precision=mixed_bfloat16"])
    with pytest.raises(ConfigError, match="mixed_bfloat16.*float32.*training_scope"):
        train_charlm(cfg, tmp_path / "run", verbose=0)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["train.precision=float8"], "train.precision"),
        (["train.precision=16"], "precision"),
        (["train.jit_compile=true", "train.deterministic=true"], "op determinism"),
        (["train.jit_compile=true", "train.strategy=mirrored"], "several devices"),
    ],
)
def test_bad_numerics_settings_are_refused_when_read(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, overrides)
