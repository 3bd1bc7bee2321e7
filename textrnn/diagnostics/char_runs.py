"""Loading the character-model run a diagnostic looks inside."""

from __future__ import annotations

import os
import pathlib

from textrnn.training.runs import load_run, read_run_config
from textrnn.training.task_registry import DEFAULT_TASK, task_of


def load_char_run(run_dir, purpose: str):
    """`(model, tokenizer, config)` of a character-LM run directory.

    Args:
        run_dir: the run directory.
        purpose: what the caller does, for the error message ("gradient flow is
            measured on", "activations are read from").

    Raises:
        FileNotFoundError: no such directory.
        ValueError: the run is of another task.

    Example:
        >>> model, tokenizer, cfg = load_char_run("runs/shakes", "activations are read from")
    """
    if not pathlib.Path(run_dir).is_dir():
        raise FileNotFoundError(f"No run directory at {os.fspath(run_dir)!r}.")
    cfg = read_run_config(run_dir)
    task = task_of(cfg) if cfg is not None else DEFAULT_TASK
    if task != "charlm":
        raise ValueError(f"{run_dir} holds a {task!r} run; {purpose} character models.")
    return load_run(run_dir)
