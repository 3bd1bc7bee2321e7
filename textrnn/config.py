"""Typed recipe configuration: TOML files in `models/` -> frozen dataclasses.

Sections mirror the command-line verbs (`[model]`, `[data]`, `[train]`, `[generate]`).
Unknown sections or keys and values of the wrong type are errors (a typo must never be
silently ignored). Overrides use `section.key=value` with TOML value syntax, e.g.
`--set train.epochs=3 --set model.cell="gru"` (bare words are taken as strings).

Example:
    >>> cfg = load_config("models/charlm-shakespeare/config.toml", ["train.epochs=1"])
    >>> cfg.train.epochs
    1
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path


class ConfigError(ValueError):
    """A recipe or override is malformed, has an unknown key or a wrong type."""


@dataclasses.dataclass(frozen=True)
class CharLMModelConfig:
    """Fields equal `CharLM.__init__` arguments (vocab_size comes from the tokeniser)."""

    cell: str = "lstm"
    units: int = 512
    num_layers: int = 1
    embedding_dim: int = 64
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    layer_norm: bool = False


@dataclasses.dataclass(frozen=True)
class CharLMDataConfig:
    dataset: str = "tinyshakespeare"  # a registered name or a path to a UTF-8 text file
    seq_len: int = 256
    batch_size: int = 64
    windows: str = "random"  # "random" windows from a zero state, or "stream" (TBPTT)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    steps_per_epoch: int = 500
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"  # "cosine" (with linear warm-up) or "constant"
    warmup_steps: int = 100
    min_learning_rate: float = 1e-4
    clipnorm: float = 1.0
    weight_decay: float = 0.0
    early_stopping_patience: int = 0  # epochs without validation improvement; 0 = off
    max_minutes: float = 0.0  # wall-clock budget over all resumed runs; 0 = none
    validation_windows: int = 256  # random validation windows scored after each epoch
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    strategy: str = "sample"
    max_length: int = 500
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    model: CharLMModelConfig = dataclasses.field(default_factory=CharLMModelConfig)
    data: CharLMDataConfig = dataclasses.field(default_factory=CharLMDataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    generate: GenerateConfig = dataclasses.field(default_factory=GenerateConfig)


TASK_CONFIGS = {"charlm": CharLMConfig}


def _coerce(section: str, key: str, value, annotation):
    kind = {"int": int, "float": float, "str": str, "bool": bool}[annotation]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(
            f"`{section}.{key}` must be {kind.__name__}. Received: {value!r} "
            f"({type(value).__name__})"
        )
    return value


def from_dict(cls, data: dict):
    """Builds a config dataclass from nested dicts, rejecting unknown keys and bad types."""
    if not isinstance(data, dict):
        raise ConfigError(f"Expected a table for {cls.__name__}. Received: {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(fields)}"
        )
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = from_dict(hint, value)
        else:
            values[name] = _coerce(cls.__name__, name, value, hint.__name__)
    return cls(**values)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def to_toml(config) -> str:
    """Serialises a config (tables of scalars) as TOML."""
    lines = []
    for section, table in to_dict(config).items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[str, str, object]:
    """`"train.epochs=3"` -> `("train", "epochs", 3)`; bare words become strings."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"Overrides look like section.key=value. Received: {text!r}")
    path, raw = text.split("=", 1)
    section, key = path.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def load_config(path=None, overrides=(), task: str = "charlm"):
    """Reads a TOML recipe (or the defaults when `path` is None) and applies overrides.

    Args:
        path: recipe file, e.g. `models/charlm-shakespeare/config.toml`.
        overrides: iterable of `section.key=value` strings.
        task: which config schema to use (`"charlm"`).

    Returns:
        A frozen config dataclass.

    Raises:
        FileNotFoundError: the recipe does not exist.
        ConfigError: malformed TOML, unknown keys, wrong types.
    """
    cls = TASK_CONFIGS[task]
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Recipe not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    for override in overrides:
        section, key, value = parse_override(override)
        data.setdefault(section, {})[key] = value
    return from_dict(cls, data)
