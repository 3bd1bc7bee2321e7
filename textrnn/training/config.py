"""Typed recipe configuration: TOML files in `models/` -> frozen dataclasses.

One schema per task, defined in the task's package (`textrnn.charlm.config`, ...) and
found through the task registry; sections mirror the command-line verbs (`[model]`,
`[data]`, `[train]`, and `[generate]` or `[translate]`). `TrainConfig`, the `[train]`
options every task shares, lives here.
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
import math
import tomllib
import typing
from pathlib import Path

from textrnn.training import task_registry


class ConfigError(ValueError):
    """A recipe or override is malformed, has an unknown key or a wrong type."""


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
    # Checkpoints at every epoch end, and in between every this many minutes of training
    # and/or every this many steps (0 = off). --resume continues from the newest one
    # exactly (see training.loop); a kill loses at most the work since it.
    checkpoint_every_minutes: float = 5.0
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2  # the newest ones kept; a damaged newest falls back
    # TensorFlow's op determinism (tf.config.experimental.enable_op_determinism): two
    # runs with the same seed give bit-identical weights, at some cost in speed.
    deterministic: bool = False
    # Scale-out (textrnn.training.distribute): "default" (one device), "mirrored" (every
    # GPU of this machine, else its logical CPUs) or "multi_worker" (the machines named
    # by the TF_CONFIG variable). `data.batch_size` stays the global batch: each replica
    # trains on its share of it, and the learning rate is not rescaled.
    strategy: str = "default"
    # multi_worker: a collective (gradient all-reduce) that waits longer than this raises,
    # so the survivors of a lost worker stop with an error instead of waiting forever.
    collective_timeout_seconds: float = 300.0
    # Numerics (textrnn.training.numerics): the Keras dtype policy ("float32",
    # "mixed_bfloat16" or "mixed_float16", the latter with dynamic loss scaling), and an
    # XLA-compiled train step.
    precision: str = "float32"
    jit_compile: bool = False
    # TensorFlow's op thread pools (textrnn.training.threads), 0 = TensorFlow's default
    # (every core for each op; all cores' worth of ops at a time). The recipes that train
    # faster with one thread per op and two ops at a time set 1 and 2.
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def __post_init__(self):
        # Values that cannot make a meaningful run are rejected when the recipe is read,
        # not discovered as a NaN model or an empty run at the end.
        at_least(self, "epochs", 1)
        at_least(self, "steps_per_epoch", 0)
        at_least(self, "warmup_steps", 0)
        at_least(self, "early_stopping_patience", 0)
        at_least(self, "checkpoint_every_steps", 0)
        at_least(self, "keep_checkpoints", 1)
        at_least(self, "intra_op_threads", 0)
        at_least(self, "inter_op_threads", 0)
        at_most(self, "intra_op_threads", MAX_THREADS)
        at_most(self, "inter_op_threads", MAX_THREADS)
        positive_finite(self, "learning_rate")
        non_negative_finite(
            self,
            "min_learning_rate",
            "clipnorm",
            "weight_decay",
            "max_minutes",
            "checkpoint_every_minutes",
        )
        one_of(self, "strategy", STRATEGIES)
        one_of(self, "precision", PRECISIONS)
        positive_finite(self, "collective_timeout_seconds")
        if self.jit_compile is True and self.deterministic is True:
            raise ConfigError(
                "`train.jit_compile = true` cannot be combined with `train.deterministic = "
                "true`: Keras turns XLA off under TensorFlow's op determinism. Choose one."
            )
        if self.jit_compile is True and self.strategy != "default":
            raise ConfigError(
                "`train.jit_compile = true` works with `train.strategy = 'default'` only "
                f"(Received: strategy {self.strategy!r}): XLA cannot compile a train step "
                "whose variables live on several devices (TensorFlow's XLA known issue "
                "'tf.Variable on a different device')."
            )
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ConfigError(
                f"`train.ema_momentum` must be in [0, 1) (0 = off). Received: {self.ema_momentum!r}"
            )


STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def one_of(section, name: str, choices) -> None:
    """Raises `ConfigError` unless the str field `name` of `section` is one of `choices`."""
    value = getattr(section, name)
    if isinstance(value, str) and value not in choices:
        raise ConfigError(f"`train.{name}` must be one of {list(choices)}. Received: {value!r}")


# More threads than any machine textrnn runs on has cores: a typo, refused.
MAX_THREADS = 1024


def at_most(section, name: str, maximum: int) -> None:
    """Raises `ConfigError` unless the int field `name` of `section` is `<= maximum`."""
    value = getattr(section, name)
    if isinstance(value, int) and not isinstance(value, bool) and value > maximum:
        raise ConfigError(f"`train.{name}` must be <= {maximum}. Received: {value!r}")


def at_least(section, name: str, minimum: int) -> None:
    """Raises `ConfigError` unless the int field `name` of `section` is `>= minimum`."""
    value = getattr(section, name)
    if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
        raise ConfigError(f"`train.{name}` must be >= {minimum}. Received: {value!r}")


def positive_finite(section, *names: str) -> None:
    """Raises `ConfigError` unless each float field is finite and > 0."""
    for name in names:
        value = getattr(section, name)
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"`train.{name}` must be a finite number > 0. Received: {value!r}")


def non_negative_finite(section, *names: str) -> None:
    """Raises `ConfigError` unless each float field is finite and >= 0."""
    for name in names:
        value = getattr(section, name)
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"`train.{name}` must be a finite number >= 0. Received: {value!r}")


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
    lines = [f'task = "{task_registry.task_of(config)}"', ""]
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
    known = list(task_registry.task_names())
    if task is not None and task not in known:
        raise ConfigError(f"Unknown task {task!r}; known tasks: {known}")
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
    if recipe_task is not None and recipe_task not in known:
        raise ConfigError(f"{path}: unknown task {recipe_task!r}; known tasks: {known}")
    if path is not None and recipe_task is None:
        recipe_task = task_registry.DEFAULT_TASK
    if task is not None and recipe_task is not None and task != recipe_task:
        raise ConfigError(f"{path} is a {recipe_task!r} recipe, not a {task!r} one.")
    cls = task_registry.get_task(task or recipe_task or task_registry.DEFAULT_TASK).config_class
    for override in overrides:
        section, key, value = parse_override(override)
        data.setdefault(section, {})[key] = value
    return from_dict(cls, data)
