"""Running a task's training under the recipe's strategy and precision, chief-only writes.

`train_task` is what `textrnn train` runs: it creates the `tf.distribute` strategy of
`[train] strategy` (`textrnn.training.distribute`) and sets the dtype policy of
`[train] precision` (`textrnn.training.numerics`) before the task builds its model, so
the model's and the optimizer's variables are created under `strategy.scope()` with the
right dtypes; then it calls the task's `train`.

On a multi-worker job only the chief writes the run directory (checkpoints, model.keras,
history.csv, gradient_norms.csv, TensorBoard logs, progress.json, results.json). The
other workers run exactly the same code, which keeps their collectives in step with the
chief's, but on a temporary directory that they delete when they finish (or fail); to
`--resume`, a non-chief worker first copies the run directory's recipe, vocabulary,
records and checkpoints into it, so the run directory must be readable from every worker
at start (a shared filesystem, or a copy of it on each machine).

Calling a task's `train` function directly (Python API) with a non-default strategy or
precision needs the same setting-up: `with training_scope(cfg.train): train_charlm(...)`
(a single process, or the chief), or `train_task` itself.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

from textrnn.training import config as config_lib
from textrnn.training import distribute, numerics
from textrnn.training.runs import MODEL_FILE

# What a resuming non-chief worker copies from the run directory (not logs, not models).
_SKIPPED_ON_COPY = ("logs", MODEL_FILE)


@contextlib.contextmanager
def training_scope(train):
    """The recipe's dtype policy and its strategy's scope; yields the strategy.

    Args:
        train: the recipe's `[train]` section.

    Raises:
        DistributeError: the strategy cannot be created (e.g. a bad `TF_CONFIG`).

    Example:
        >>> with training_scope(cfg.train) as strategy:
        ...     results = train_charlm(cfg, "runs/x")
    """
    strategy = distribute.get_strategy(train)
    with numerics.precision_policy(train), strategy.scope():
        yield strategy


def _copy_run_for_resume(run_dir: Path, worker_dir: Path) -> None:
    if not (run_dir / "config.toml").is_file():
        raise distribute.DistributeError(
            f"This worker cannot read {run_dir / 'config.toml'}: to resume, every worker "
            "needs read access to the chief's run directory (a shared filesystem, or a "
            "copy of it on this machine)."
        )

    def skipped(folder, names):
        return [n for n in names if Path(folder) == run_dir and n in _SKIPPED_ON_COPY]

    try:
        shutil.copytree(run_dir, worker_dir, ignore=skipped)
    except shutil.Error as e:  # a file the chief replaced or renamed meanwhile
        print(f"textrnn: worker copy of {run_dir}: skipped {len(e.args[0])} file(s) that "
              "changed while copying", file=sys.stderr)  # fmt: skip


def train_task(task, cfg, run_dir, *, resume: bool = False, verbose: int = 1) -> dict:
    """Trains `task` from `cfg` under its `[train] strategy` and `precision`.

    Args:
        task: a registered `Task` (`task_registry.get_task(name)`).
        cfg: the task's config.
        run_dir: the run directory (written by the chief only).
        resume: continue the run exactly from its newest good checkpoint.
        verbose: Keras progress verbosity (non-chief workers are always quiet).

    Returns:
        The task's results dict (on non-chief workers: that of their own copy).

    Raises:
        ConfigError: a recipe that cannot run under its strategy (carried state).
        DistributeError: a bad `TF_CONFIG`, or a worker that cannot read the run
            directory to resume.
        WorkerLostError: another worker of a multi-worker job stopped.

    Example:
        >>> cfg = load_config(recipe, ["train.strategy=multi_worker"])  # TF_CONFIG set
        >>> train_task(task_registry.get_task("charlm"), cfg, "runs/x")
    """
    windows = getattr(getattr(cfg, "data", None), "windows", None)
    if cfg.train.strategy != "default" and windows == "stream":
        raise config_lib.ConfigError(
            f"`train.strategy = {cfg.train.strategy!r}` cannot train `data.windows = "
            "'stream'`: the state carried between batches has the global batch's shape. "
            "Use data.windows = 'random', or train.strategy = 'default'."
        )
    run_dir = Path(run_dir)
    with training_scope(cfg.train) as strategy:
        if distribute.is_chief(strategy):
            return task.train(cfg, run_dir, resume=resume, verbose=verbose)
        with tempfile.TemporaryDirectory(prefix="textrnn-worker-") as scratch:
            worker_dir = Path(scratch) / "run"
            if resume:
                _copy_run_for_resume(run_dir, worker_dir)
            return task.train(cfg, worker_dir, resume=resume, verbose=0)
