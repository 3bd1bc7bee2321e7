"""Running a task's training under the recipe's strategy and precision, chief-only writes.

`train_task` is what `textrnn train` runs: it creates the `tf.distribute` strategy of
`[train] strategy` (`textrnn.training.distribute`) and sets the dtype policy of
`[train] precision` (`textrnn.training.numerics`) before the task builds its model, so
the model's and the optimizer's variables are created under `strategy.scope()` with the
right dtypes; then it calls the task's `train`.

On a multi-worker job only the chief writes the run directory (checkpoints, model.keras,
history.csv, gradient_norms.csv, TensorBoard logs, progress.json, results.json). The
other workers run exactly the same code, which keeps their collectives in step with the
chief's, but on a temporary directory that they delete when they finish (or fail; one
killed outright cannot, so each non-chief worker first deletes the directories of workers
whose process is gone, `remove_stale_scratch`); to
`--resume`, a non-chief worker first copies the run directory's recipe, vocabulary,
records and checkpoints into it, so the run directory must be readable from every worker
at start (a shared filesystem, or a copy of it on each machine).

Calling a task's `train` function directly (Python API) with a non-default strategy or
precision needs the same setting-up: `with training_scope(cfg.train): train_charlm(...)`
(a single process, or the chief), or `train_task` itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from textrnn.training import config as config_lib
from textrnn.training import distribute, numerics
from textrnn.training.runs import MODEL_FILE

# What a resuming non-chief worker copies from the run directory (not logs, not models).
_SKIPPED_ON_COPY = ("logs", MODEL_FILE)

# A non-chief worker's scratch directory in the system's temporary folder:
# `textrnn-worker-<pid>-<random>`, the pid telling a later worker whether its owner runs.
SCRATCH_PREFIX = "textrnn-worker-"


def remove_stale_scratch(folder=None) -> list[Path]:
    """Deletes the scratch directories of non-chief workers whose process has ended.

    A worker deletes its own directory when it finishes or fails, but not when it is
    killed outright (SIGKILL, the out-of-memory killer); without this a job that is killed
    and resumed again and again would fill the temporary folder. A directory whose pid
    runs (or belongs to another user's process) is kept; so are names without a pid. Only
    on POSIX systems (elsewhere nothing is deleted).

    Args:
        folder: where to look (default: the system's temporary folder).

    Returns:
        The directories deleted.

    Example:
        >>> remove_stale_scratch(tempfile.mkdtemp())  # nothing there
        []
    """
    if os.name != "posix":
        return []
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*-*"):
        pid = path.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or _process_runs(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or no pid at all: keep it
    return True


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
        remove_stale_scratch()
        with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
            worker_dir = Path(scratch) / "run"
            if resume:
                _copy_run_for_resume(run_dir, worker_dir)
            return task.train(cfg, worker_dir, resume=resume, verbose=0)
