"""Typed recipe configuration: TOML files in `models/` -> frozen dataclasses.

One schema per task (`TASK_CONFIGS`); sections mirror the command-line verbs (`[model]`,
`[data]`, `[train]`, and `[generate]` or `[translate]`).
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
    """Optimisation settings shared by every task."""

    epochs: int = 20
    steps_per_epoch: int = 500  # 0 = one full pass over the training data per epoch
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"  # "cosine" (with linear warm-up) or "constant"
    warmup_steps: int = 100
    min_learning_rate: float = 1e-4
    clipnorm: float = 1.0
    weight_decay: float = 0.0
    # Polyak averaging: validation, checkpoints and the saved model use an exponential
    # moving average of the weights with this momentum (e.g. 0.99); 0 = off.
    ema_momentum: float = 0.0
    early_stopping_patience: int = 0  # epochs without validation improvement; 0 = off
    max_minutes: float = 0.0  # wall-clock budget over all resumed runs; 0 = none
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class CharLMTrainConfig(TrainConfig):
    validation_windows: int = 256  # random validation windows scored after each epoch


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
    train: CharLMTrainConfig = dataclasses.field(default_factory=CharLMTrainConfig)
    generate: GenerateConfig = dataclasses.field(default_factory=GenerateConfig)


# --------------------------------------------------------------------------------------
# Sentiment classification
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SentimentModelConfig:
    """Fields equal `SentimentClassifier.__init__` arguments (the vocabulary size comes from
    the tokeniser, the number of classes from `data.label_names`)."""

    cell: str = "lstm"
    units: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    embedding_dim: int = 128
    pooling: str = "attention"  # "last", "mean", "max" or "attention"
    attention_units: int = 64
    dropout: float = 0.3  # before the output layer
    embedding_dropout: float = 0.0  # drops whole words (all channels of a position)
    spatial_dropout: float = 0.0  # drops embedding channels (the same ones at every position)
    recurrent_dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class SentimentDataConfig:
    dataset: str = "sst2"  # "sst2", "imdb" or a folder with train.tsv / dev.tsv / test.tsv
    tokenizer: str = "word"  # "word" or "wordpiece", learned from the training split
    vocab_size: int = 20000  # special tokens included
    min_count: int = 1  # word tokeniser: rarer words become <unk>
    lowercase: bool = True
    max_length: int = 256  # tokens kept per text (see `truncation`)
    truncation: str = "head"  # keep the "head", the "tail", or "head_tail" (1/4 + 3/4)
    batch_size: int = 64
    num_buckets: int = 8  # length buckets for batching; 0 pads every batch to its longest
    validation_fraction: float = 0.1  # IMDB: share of train held out for validation
    split_seed: int = 0  # IMDB: seed of the validation split
    validation_split: str = "random"  # IMDB: "random" or "movie_blocks" (sentiment_data)
    label_names: tuple[str, ...] = ("negative", "positive")


@dataclasses.dataclass(frozen=True)
class SentimentTrainConfig(TrainConfig):
    epochs: int = 8
    steps_per_epoch: int = 0
    learning_rate: float = 2e-3
    warmup_steps: int = 0
    min_learning_rate: float = 1e-5
    early_stopping_patience: int = 3


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    model: SentimentModelConfig = dataclasses.field(default_factory=SentimentModelConfig)
    data: SentimentDataConfig = dataclasses.field(default_factory=SentimentDataConfig)
    train: SentimentTrainConfig = dataclasses.field(default_factory=SentimentTrainConfig)


# --------------------------------------------------------------------------------------
# Translation
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TranslationModelConfig:
    """Fields equal `Seq2Seq.__init__` arguments (vocabulary sizes come from the tokenisers)."""

    cell: str = "lstm"
    embedding_dim: int = 256
    encoder_units: int = 256  # per direction
    encoder_layers: int = 1
    bidirectional: bool = True
    decoder_units: int = 512
    decoder_layers: int = 1
    attention: str = "luong"  # "bahdanau" or "luong"
    attention_score: str = "general"  # Luong's "dot", "general" or "concat"
    attention_units: int = 256
    input_feeding: bool = True  # Luong: feed the attentional vector to the next step
    bridge: str = "dense"  # decoder initial state: "dense" (from the encoder) or "zero"
    dropout: float = 0.3
    tie_embeddings: bool = True  # share target embedding and output projection


@dataclasses.dataclass(frozen=True)
class TranslationDataConfig:
    dataset: str = "multi30k"  # "multi30k", "spa-eng" or a folder of parallel files
    source_language: str = "de"
    target_language: str = "en"
    source_vocab_size: int = 8000  # WordPiece targets, special tokens included
    target_vocab_size: int = 8000
    lowercase: bool = False
    max_source_length: int = 100  # training pairs longer than this (in tokens) are skipped
    max_target_length: int = 100
    batch_size: int = 64
    num_buckets: int = 8
    split_seed: int = 0  # spa-eng: seed of the split


@dataclasses.dataclass(frozen=True)
class TranslationTrainConfig(TrainConfig):
    epochs: int = 15
    steps_per_epoch: int = 0
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    min_learning_rate: float = 5e-5
    early_stopping_patience: int = 4
    label_smoothing: float = 0.1
    scheduled_sampling: float = 0.0  # final probability of feeding the model's own token
    validation_bleu: bool = True  # greedy BLEU on the validation split after each epoch


@dataclasses.dataclass(frozen=True)
class TranslateConfig:
    """Decoding defaults for `textrnn translate`, evaluation and `serving_default`."""

    strategy: str = "beam"  # "greedy", "beam" or "sample"
    beam_width: int = 5
    n_best: int = 1
    length_penalty: str = "gnmt"
    alpha: float = 0.6
    max_length: int = 200  # absolute cap on generated tokens
    max_length_ratio: float = 2.0  # and at most ratio * source tokens + offset
    max_length_offset: int = 10
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    model: TranslationModelConfig = dataclasses.field(default_factory=TranslationModelConfig)
    data: TranslationDataConfig = dataclasses.field(default_factory=TranslationDataConfig)
    train: TranslationTrainConfig = dataclasses.field(default_factory=TranslationTrainConfig)
    translate: TranslateConfig = dataclasses.field(default_factory=TranslateConfig)


TASK_CONFIGS = {
    "charlm": CharLMConfig,
    "sentiment": SentimentConfig,
    "translate": TranslationConfig,
}
TASKS = tuple(TASK_CONFIGS)


def task_of(config) -> str:
    """The task name (`"charlm"`, `"sentiment"`, `"translate"`) of a config object."""
    for name, cls in TASK_CONFIGS.items():
        if isinstance(config, cls):
            return name
    raise TypeError(f"Not a textrnn task config: {type(config).__name__}")


_SCALARS = {int: "int", float: "float", str: "str", bool: "bool"}


def _coerce(section: str, key: str, value, hint):
    if typing.get_origin(hint) is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"`{section}.{key}` must be an array of {_SCALARS[item]}. Received: {value!r} "
                f"({type(value).__name__})"
            )
        return tuple(_coerce(section, key, v, item) for v in value)
    kind = hint
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
            values[name] = _coerce(cls.__name__, name, value, hint)
    return cls(**values)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(config) -> str:
    """Serialises a config as TOML: `task = "..."`, then one table per section."""
    lines = [f'task = "{task_of(config)}"', ""]
    for section, table in to_dict(config).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
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


def load_config(path=None, overrides=(), task: str | None = None):
    """Reads a TOML recipe (or the defaults when `path` is None) and applies overrides.

    A recipe names its task with a top-level `task = "..."` line; recipes without one are
    character-LM recipes (the first format).

    Args:
        path: recipe file, e.g. `models/charlm-shakespeare/config.toml`.
        overrides: iterable of `section.key=value` strings.
        task: the expected task (`"charlm"`, `"sentiment"` or `"translate"`); None takes
            the recipe's own (the defaults of `"charlm"` when `path` is None).

    Returns:
        A frozen config dataclass (`CharLMConfig`, `SentimentConfig` or
        `TranslationConfig`).

    Raises:
        FileNotFoundError: the recipe does not exist.
        ConfigError: malformed TOML, unknown keys, wrong types, or a recipe for another
            task than `task`.

    Example:
        >>> load_config("models/sentiment-sst2/config.toml", ["model.cell=gru"]).model.cell
        'gru'
    """
    if task is not None and task not in TASK_CONFIGS:
        raise ConfigError(f"Unknown task {task!r}; known tasks: {list(TASK_CONFIGS)}")
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Recipe not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    recipe_task = data.pop("task", None)
    if recipe_task is not None and recipe_task not in TASK_CONFIGS:
        raise ConfigError(
            f"{path}: unknown task {recipe_task!r}; known tasks: {list(TASK_CONFIGS)}"
        )
    if path is not None and recipe_task is None:
        recipe_task = "charlm"
    if task is not None and recipe_task is not None and task != recipe_task:
        raise ConfigError(f"{path} is a {recipe_task!r} recipe, not a {task!r} one.")
    cls = TASK_CONFIGS[task or recipe_task or "charlm"]
    for override in overrides:
        section, key, value = parse_override(override)
        data.setdefault(section, {})[key] = value
    return from_dict(cls, data)
