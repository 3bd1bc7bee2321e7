"""Exporting a finished run as the next version of a base directory (`textrnn export`).

The task's export (found through the task registry) writes a complete SavedModel, with
its warm-up file and metadata asset, into a temporary directory under the base; the
run's figures from its `results.json` are added to the metadata asset; then the
directory is renamed to the next version number (`textrnn.export.versions`).

Example:
    >>> export_run_version("runs/shakes", "exports/shakes")
    PosixPath('exports/shakes/1')
"""

from __future__ import annotations

from pathlib import Path

from textrnn.export.metadata import add_figures, run_figures
from textrnn.export.versions import write_next_version
from textrnn.training import task_registry
from textrnn.training.runs import load_run


def export_run_version(run_dir, base_dir, options=None) -> Path:
    """Exports the run in `run_dir` as the next version under `base_dir`.

    Args:
        run_dir: a finished run directory.
        base_dir: the base directory of the versions (created if missing).
        options: a `task_registry.ExportOptions` (None: its defaults).

    Returns:
        The version directory written (`base_dir/<n>`).

    Raises:
        FileExistsError: `base_dir` is itself a SavedModel (a flat export).
        ValueError: an export option outside its domain (from the task's export).
    """
    model, tokenizer, cfg = load_run(run_dir)
    task_name = task_registry.task_of(cfg) if cfg is not None else task_registry.DEFAULT_TASK
    task = task_registry.get_task(task_name)
    options = options or task_registry.ExportOptions()

    def write(export_dir):
        task.export(model, tokenizer, cfg, export_dir, options)
        add_figures(export_dir, run_figures(run_dir))

    return write_next_version(base_dir, write)
