import pytest

from textrnn.charlm.config import CharLMConfig
from textrnn.training.config import ConfigError, load_config, parse_override, to_toml

RECIPE = "models/charlm-shakespeare/config.toml"


def test_recipe_loads_with_overrides():
    cfg = load_config(RECIPE, ["train.epochs=3", "model.cell=gru", "train.learning_rate=1"])
    assert cfg.train.epochs == 3 and cfg.model.cell == "gru"
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)


def test_defaults_without_recipe():
    assert load_config(None) == CharLMConfig()


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=3", "Unknown key"),
        ("trian.epochs=3", "Unknown key"),
        ("train.epochs=three", "must be int"),
        ("train.epochs=true", "must be int"),
        ("model.layer_norm=1", "must be bool"),
        ("epochs=3", "section.key=value"),
    ],
)
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RECIPE, [override])


def test_toml_round_trip(tmp_path):
    cfg = load_config(RECIPE, ['data.dataset="/tmp/a b\\\\c.txt"'])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


def test_parse_override_types():
    assert parse_override("a.b=0.5") == ("a", "b", 0.5)
    assert parse_override("a.b=lstm") == ("a", "b", "lstm")


def test_missing_and_malformed_recipe(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.learning_rate=nan",
            "`train.learning_rate` must be a finite number > 0. Received: nan",
        ),
        ("train.learning_rate=0.0", "`train.learning_rate` must be a finite number > 0"),
        ("train.learning_rate=-inf", "Received: -inf"),
        ("train.epochs=0", "`train.epochs` must be >= 1. Received: 0"),
        (
            "train.max_minutes=-1",
            "`train.max_minutes` must be a finite number >= 0. Received: -1.0",
        ),
        ("train.clipnorm=nan", "`train.clipnorm` must be a finite number >= 0"),
        ("train.steps_per_epoch=-5", "`train.steps_per_epoch` must be >= 0"),
        ("train.ema_momentum=1.0", "`train.ema_momentum` must be in [0, 1)"),
        ("train.intra_op_threads=-1", "`train.intra_op_threads` must be >= 0. Received: -1"),
        ("train.inter_op_threads=100000", "`train.inter_op_threads` must be <= 1024"),
    ],
)
def test_absurd_training_values_are_rejected_when_the_recipe_is_read(override, message):
    for task in ("charlm", "sentiment", "translate"):
        with pytest.raises(ConfigError) as error:
            load_config(None, [override], task=task)
        assert message in str(error.value)


def test_the_cli_rejects_a_nan_learning_rate_before_creating_the_run(tmp_path, capsys):
    from conftest import REPO

    from textrnn.cli import main

    recipe = str(REPO / "models/charlm-shakespeare/config.toml")
    run = tmp_path / "run"
    args = ["train", "charlm", "--recipe", recipe, "--run-dir", str(run)]
    assert main([*args, "--set", "train.learning_rate=nan"]) == 2
    assert "`train.learning_rate` must be a finite number > 0" in capsys.readouterr().err
    assert not run.exists()
