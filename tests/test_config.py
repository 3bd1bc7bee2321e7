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
