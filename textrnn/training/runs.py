"""Run directories: what a run needs and produces, and loading a finished one.

A run directory holds:

    run_dir/
      config.toml        the resolved recipe, with its task (a resumed run must match it)
      vocab*.txt         the vocabulary (or vocabularies) the model was trained with
      backup/            checkpoints (ckpt-<step>.npz + .json, the newest two) that
                         --resume continues from exactly (`training.checkpoints`)
      best.weights.h5    the best weights so far by the monitored validation figure
      model.keras        the best model (what evaluate / generate / predict / export use)
      history.csv        per-epoch metrics, one row per epoch
      logs/              TensorBoard logs
      progress.json      training seconds, steps, tokens and the best validation figure,
                         as of the newest checkpoint
      results.json       final figures

Every file here that a reader takes whole is written to a temporary name and renamed
(`training.atomic`), so a kill never leaves half of one.

Each task's `train` module builds its data and model and calls
`textrnn.training.loop.fit_resumable`; `load_run` loads any finished run through the
task registry.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import keras

from textrnn.training import atomic, task_registry
from textrnn.training import config as config_lib

CONFIG_FILE = "config.toml"
MODEL_FILE = "model.keras"
BEST_WEIGHTS_FILE = "best.weights.h5"
BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"
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
        differences = list(_differences(config_lib.to_dict(saved), config_lib.to_dict(cfg)))
        refused = [d for d in differences if d[0] not in RESUMABLE_CHANGES]
        if refused:
            changes = "\n".join(
                f"  {key}: started with {old!r}, requested {new!r}" for key, old, new in refused
            )
            allowed = ", ".join(sorted(RESUMABLE_CHANGES))
            raise RunDirError(
                f"--resume: the recipe differs from the one {run_dir} was started with "
                f"({run_dir / CONFIG_FILE}):\n{changes}\nResume with `--resume` alone (the "
                f"run's own recipe is used) and change only {allowed}; or start a new "
                "run directory."
            )
        for key, old, new in differences:
            print(f"--resume: {key} changed from {old!r} to {new!r}", file=sys.stderr)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(
            f"Run directory {run_dir} is not empty. Pass --resume to continue that run, "
            "or choose a new directory."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temporaries(run_dir)
    atomic.write_text(config_path, config_lib.to_toml(cfg))


# What a resumed run may change: when and how often it stops and checkpoints, nothing
# that decides the numbers of a step, so it still ends as an uninterrupted run would.
RESUMABLE_CHANGES = frozenset(
    {
        "train.max_minutes",
        "train.checkpoint_every_minutes",
        "train.checkpoint_every_steps",
        "train.keep_checkpoints",
        "train.collective_timeout_seconds",
    }
)


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
