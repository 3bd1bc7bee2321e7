"""Run directories: what a run needs and produces, and loading a finished one.

A run directory holds:

    run_dir/
      config.toml        the resolved recipe, with its task (a resumed run must match it)
      vocab*.txt         the vocabulary (or vocabularies) the model was trained with
      backup/            BackupAndRestore state (weights + optimizer + epoch), for --resume
      best.weights.h5    the best weights so far by the monitored validation figure
      model.keras        the best model (what evaluate / generate / predict / export use)
      history.csv        per-epoch metrics
      logs/              TensorBoard logs
      progress.json      training seconds, tokens seen and the best validation figure so far
      results.json       final figures

Each task's `train` module builds its data and model and calls
`textrnn.training.loop.fit_resumable`; `load_run` loads any finished run through the
task registry.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

from textrnn.training import config as config_lib
from textrnn.training import task_registry

CONFIG_FILE = "config.toml"
MODEL_FILE = "model.keras"
BEST_WEIGHTS_FILE = "best.weights.h5"
PROGRESS_FILE = "progress.json"
RESULTS_FILE = "results.json"


class RunDirError(RuntimeError):
    """The run directory is in a state that does not allow the requested action."""


def read_run_config(run_dir):
    """The resolved recipe saved in a run directory, or None if there is none."""
    path = Path(run_dir) / CONFIG_FILE
    return config_lib.load_config(path) if path.exists() else None


def prepare_run_dir(run_dir: Path, cfg, resume: bool):
    """Creates a run directory for `cfg`, or checks that `--resume` continues the same run.

    Raises:
        RunDirError: resuming a directory without a run or with another recipe, or
            starting in a non-empty directory without `resume`.
    """
    config_path = run_dir / CONFIG_FILE
    if resume:
        if not config_path.exists():
            raise RunDirError(
                f"--resume given, but {run_dir} holds no run ({CONFIG_FILE} missing)."
            )
        saved = config_lib.load_config(config_path)
        if saved != cfg:
            changes = "\n".join(
                f"  {key}: started with {old!r}, requested {new!r}"
                for key, old, new in _differences(
                    config_lib.to_dict(saved), config_lib.to_dict(cfg)
                )
            )
            raise RunDirError(
                f"--resume: the recipe differs from the one {run_dir} was started with "
                f"({run_dir / CONFIG_FILE}):\n{changes}\nRepeat the run's --set options, or "
                "start a new run directory."
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(
            f"Run directory {run_dir} is not empty. Pass --resume to continue that run, "
            "or choose a new directory."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config_lib.to_toml(cfg), encoding="utf-8")


def _differences(saved: dict, requested: dict, prefix: str = ""):
    """`(section.key, saved value, requested value)` for every value that differs."""
    for key in sorted(set(saved) | set(requested)):
        a, b = saved.get(key), requested.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            yield f"{prefix}{key}", a, b


def load_keras_model(path: Path):
    """Loads a `.keras` file, naming the file when it is missing, truncated or foreign."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {path.parent} a finished training run?")
    # Keras answers a truncated zip with "File not found"; say what is wrong instead.
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError):
        damaged = "the zip directory"
    if damaged is not None:
        raise ValueError(
            f"The model file {path} is truncated or corrupt ({damaged} cannot be read; "
            f"{path.stat().st_size:,} bytes): it is not a complete .keras archive."
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # a foreign or incompatible file: say which one
        raise ValueError(f"Could not load the model file {path}: {e}") from e


def load_run(run_dir):
    """Loads `(model, tokenizer, config)` from any finished run directory.

    The task comes from the run's `config.toml` (a run without one is a character-LM
    run, the first format); its registered loader does the rest.

    For a translation run `tokenizer` is the pair `(source_tokenizer, target_tokenizer)`.

    Raises:
        FileNotFoundError: the model or a vocabulary file is missing.
        VocabularyError: a vocabulary does not match the model.

    Example:
        >>> model, tokenizer, cfg = load_run("runs/shakes")
    """
    cfg = read_run_config(run_dir)
    name = task_registry.task_of(cfg) if cfg is not None else task_registry.DEFAULT_TASK
    return task_registry.get_task(name).load_run(run_dir)
