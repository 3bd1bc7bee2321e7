"""The task registry: how each task reads its recipe, trains, loads, evaluates and exports.

Shared code (`load_config`, `load_run`, the command line, export) finds a task here, by
name or by the class of its config, and never imports a task package. Each task package
registers itself when it is imported (`textrnn.charlm`, `textrnn.sentiment`,
`textrnn.translation`), and `import textrnn` imports them all. A new task is a package of
its own that calls `register_task` in its `__init__.py`, plus one import line in
`textrnn/__init__.py` and its recipes.

Example:
    >>> import textrnn
    >>> get_task("sentiment").use_verb
    'predict'
    >>> task_names()
    ('charlm', 'sentiment', 'translate')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import NamedTuple

# Recipes without a `task = "..."` line and run directories without a `config.toml` are
# character-LM ones (the first format).
DEFAULT_TASK = "charlm"


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """What `textrnn evaluate` passes to a task's `evaluate`; each task reads the fields
    that concern it and leaves the others at their defaults.

    Args:
        split: the split to score (sentiment: default validation and test; translation:
            default test).
        dataset: character LM: a registered name or a text file (default: the recipe's).
        num_windows: character LM: random windows of the window protocol.
        decoding: translation: decoding options given on the command line (`strategy`,
            `beam_width`, `n_best`, `alpha`, `max_length`, `temperature`, `top_k`,
            `top_p`, `seed`); None or absent = the recipe's `[translate]` value.
        jit_compile: translation: XLA-compile the decoding loop.
        hypotheses_path: translation: write the translations here, one per line.
        per_sentence_path: translation: write a TSV of sentence BLEU, worst first.
    """

    split: str | None = None
    dataset: str | None = None
    num_windows: int = 2000
    decoding: Mapping[str, object] = dataclasses.field(default_factory=dict)
    jit_compile: bool = False
    hypotheses_path: str | None = None
    per_sentence_path: str | None = None


class Evaluation(NamedTuple):
    """What a task's `evaluate` returns.

    Attributes:
        figures: the figures, as written by `textrnn evaluate --output`.
        report: the text `textrnn evaluate` prints on standard output.
        notes: remarks for standard error (e.g. characters outside the vocabulary).
    """

    figures: dict
    report: str
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What `textrnn export` passes to a task's `export`.

    Args:
        beam_width: character LM: the beam width of the `beam` signature.
        jit_compile: generating models: XLA-compile the decoding loops in the export.
        limits: the caps every signature checks its inputs against, a
            `textrnn.export.limits.ExportLimits` (None: its defaults).
    """

    beam_width: int = 5
    jit_compile: bool = False
    limits: object = None


@dataclasses.dataclass(frozen=True)
class Task:
    """One task: its recipe schema and the functions that shared code calls.

    Args:
        name: the task's name in recipes and on the command line (`task = "charlm"`).
        description: one line for `textrnn train --help`.
        config_class: the frozen dataclass of its recipes (`[model]`, `[data]`, ...).
        train: `train(cfg, run_dir, *, resume=False, verbose=1) -> results dict`.
        load_run: `load_run(run_dir) -> (model, tokenizer, cfg)`.
        evaluate: `evaluate(model, tokenizer, cfg, EvaluateOptions) -> Evaluation`.
        export: `export(model, tokenizer, cfg, export_dir, ExportOptions) -> Path`.
        use_verb: the command that uses a finished run (`"generate"`, `"predict"`, ...).
        summarize: `summarize(results) -> str`, a few lines on what `train` returned, for
            the terminal (the full figures are in the run's `results.json`).
    """

    name: str
    description: str
    config_class: type
    train: Callable
    load_run: Callable
    evaluate: Callable
    export: Callable
    use_verb: str
    summarize: Callable


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Adds `task` to the registry (a task package calls this when it is imported).

    Raises:
        ValueError: another task already has this name or this config class.
    """
    for other in _TASKS.values():
        if other.name == task.name:
            continue
        if other.config_class is task.config_class:
            raise ValueError(
                f"Task {task.name!r} uses config class {task.config_class.__name__}, "
                f"already registered by task {other.name!r}."
            )
    old = _TASKS.get(task.name)
    # Re-registering the same task (e.g. a reloaded module) replaces it; a different
    # task under a taken name is a mistake.
    if old is not None and old.config_class.__qualname__ != task.config_class.__qualname__:
        raise ValueError(f"A task named {task.name!r} is already registered.")
    _TASKS[task.name] = task
    return task


def task_names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    return tuple(_TASKS)


def get_task(name: str) -> Task:
    """The registered `Task` called `name`.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown task {name!r}; known tasks: {list(_TASKS)}") from None


def task_of(config) -> str:
    """The task name (`"charlm"`, `"sentiment"`, `"translate"`) of a config object.

    Raises:
        TypeError: `config` is not the config of a registered task.
    """
    for task in _TASKS.values():
        if isinstance(config, task.config_class):
            return task.name
    raise TypeError(f"Not a textrnn task config: {type(config).__name__}")
